"""A vendor's reply as the adapters read it: the bytes, the JSON, the models.

Every vendor reply model derives from `VendorReply`: fields the watcher does not read are
ignored, and a validation error never quotes the reply's values (they may hold tokens or
secrets). `decode_json` and `validate` turn an unreadable reply into a MalformedReplyError
that names what is wrong (locations and reasons only); the client retries those like any
transient failure.

`digest` hashes the decoded JSON of one order as the vendor sent it (`ports.Listing`):
adapters compare it with the stored one before validating and mapping the order at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import pydantic
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from watcher.core.errors import MalformedReplyError

M = TypeVar("M", bound=pydantic.BaseModel)
_PROBLEMS_QUOTED = 3


@dataclass(frozen=True, slots=True)
class Reply:
    """A vendor's reply, read in full; `headers` are case-insensitive."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class VendorReply(pydantic.BaseModel):
    """Base of every model of a vendor reply (see the module docstring)."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class CamelCaseReply(VendorReply):
    """A vendor reply in camelCase whose ids may come as numbers (Adobe, Partner Center)."""

    model_config = pydantic.ConfigDict(alias_generator=to_camel, coerce_numbers_to_str=True)


def decode_json(reply: Reply, *, what: str) -> Any:
    """The reply's JSON document, or MalformedReplyError saying why it is not one."""
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError as exc:
        raise MalformedReplyError(
            f"{what}: the reply is not valid JSON ({exc}; {len(reply.body)} bytes)"
        ) from exc


def digest(document: Any) -> str:
    """A digest of decoded JSON (BLAKE2b, 128 bits, hex), the same for the same JSON whatever
    the order of its keys. It is not the essence's fingerprint: any change the vendor makes
    to the document changes it, events or not."""
    data = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def validate(model: type[M], document: Any, *, what: str, at: str = "") -> M:
    """`document` as a `model`, or MalformedReplyError naming the fields that are wrong;
    `at` is where `document` sits in the reply (`items.3`), put before their locations."""
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = "; ".join(_problem(error, at) for error in exc.errors()[:_PROBLEMS_QUOTED])
        extra = exc.error_count() - _PROBLEMS_QUOTED
        more = f" (+{extra} more)" if extra > 0 else ""
        raise MalformedReplyError(f"{what}: unexpected reply shape: {problems}{more}") from exc


def _problem(error: ErrorDetails, at: str) -> str:
    location = ".".join(str(part) for part in (*filter(None, [at]), *error["loc"])) or "(document)"
    return f"{location}: {error['msg']}"
