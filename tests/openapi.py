"""Validate JSON replies against a vendor's published OpenAPI document (tests/specs/).

`Spec.load(name)` reads a document once per test run. `spec.validate(body, path=, method=,
status=)` checks a decoded reply against the schema the document gives for that operation
and status (application/json), resolving `$ref`s within the document; `spec.schema(ref)`
checks against a named component. Failures raise `jsonschema.ValidationError` naming the
path inside the reply, so a drifting simulator fails its test with the field that drifted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30Validator, OAS31Validator

SPECS = Path(__file__).resolve().parent / "specs"


@dataclass(frozen=True)
class Spec:
    document: dict[str, Any]

    @classmethod
    def load(cls, name: str) -> Spec:
        """`name` relative to the specs folder, e.g. "zuora/quickstart-v2.openapi.yaml"."""
        return _load(name)

    def validate(self, body: Any, *, path: str, method: str = "get", status: int = 200) -> None:
        pointer = "/".join(
            ("#/paths", _escape(path), method, "responses", str(status), "content",
             _escape("application/json"), "schema")
        )  # fmt: skip
        self._validator(pointer).validate(body)

    def validate_component(self, body: Any, name: str) -> None:
        self._validator(f"#/components/schemas/{_escape(name)}").validate(body)

    def _validator(self, pointer: str) -> Validator:
        version = str(self.document.get("openapi", "3.0"))
        cls = OAS31Validator if version.startswith("3.1") else OAS30Validator
        # The whole document is the root schema, so every `#/...` reference resolves
        # inside it; the sibling `$ref` says which part the reply must match.
        return cls({**self.document, "$ref": pointer})


@functools.cache
def _load(name: str) -> Spec:
    path = SPECS / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: the vendors' OpenAPI documents live in tests/specs (see its README)"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser, where built
    return Spec(yaml.load(path.read_text(), Loader=loader))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
