"""One typed settings object, loaded once at the edge and passed down.

Sources: a TOML file (`--config PATH` or WATCHER_CONFIG), then the environment, where
`WATCHER_AMQP__URL` overrides `[amqp] url` and `WATCHER_SOURCES__0__AUTH__CLIENT_SECRET`
overrides the first source's secret. A secret may also come from a file
(`client_secret_file`). Every problem becomes a `ConfigError` naming the key.
Secrets are `SecretStr`, so they print as '**********' wherever a setting is shown.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from watcher import vendors
from watcher.core.errors import ConfigError

ENV_PREFIX = "WATCHER_"
OptionsT = TypeVar("OptionsT", bound=vendors.Options)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str | float) -> float:
    """'90s', '15m', '2h', '1d' or a bare number of seconds, as seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration must be a number of seconds or a text such as '2h'")
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as '90s', '15m' or '2h'")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


DurationS = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    url: str = "sqlite:///order-watcher.db"


class QueueSettings(_Section):
    """A consumer queue the watcher declares and binds for its consumers."""

    name: str
    bindings: list[str] = Field(default_factory=lambda: ["#"])
    type: Literal["quorum", "classic"] = "quorum"
    dead_letter: bool = True


class AmqpSettings(_Section):
    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "order-watcher"
    unroutable_exchange: str = "order-watcher.unroutable"
    unroutable_queue: str = "order-watcher.unroutable"
    publish_window: int = Field(default=256, ge=1, le=10_000)
    relay_batch: int = Field(default=500, ge=1, le=50_000)
    relay_idle_s: float = Field(default=1.0, gt=0)
    reconnect_delay_s: float = Field(default=2.0, gt=0)
    confirm_timeout_s: float = Field(default=30.0, gt=0)
    queues: list[QueueSettings] = Field(default_factory=list)


class HttpSettings(_Section):
    listen: str = "127.0.0.1:9108"


class AuthSettings(_Section):
    """OAuth client credentials, plus what some vendors need besides.

    `scope` and `resource` default per vendor when left out (Adobe IMS scopes, the Partner
    Center audience). `refresh_token` is Partner Center's app+user grant, which its
    provisioning-status endpoint requires.
    """

    token_url: str | None = None
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    client_secret_file: Path | None = None
    api_key: SecretStr | None = None
    scope: str | None = None
    resource: str | None = None
    refresh_token: SecretStr | None = None
    refresh_before_expiry_s: float = Field(default=180.0, ge=0)

    @model_validator(mode="after")
    def _secret_from_file(self) -> AuthSettings:
        if self.client_secret_file is None or self.client_secret.get_secret_value():
            return self
        try:
            secret = self.client_secret_file.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read client_secret_file: {exc.strerror}") from None
        object.__setattr__(self, "client_secret", SecretStr(secret))
        return self


class RetrySettings(_Section):
    attempts: int = Field(default=5, ge=1, le=20)
    base_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=30.0, gt=0)


class LimitSettings(_Section):
    """Per-source politeness: a request-rate limit and a circuit breaker.

    `rate_per_s` and `burst` default to the vendor's documented limits (see the README).
    After `breaker_failures` failed fetches in a row the source stops calling the vendor
    for `breaker_open_s`, then lets one probe through.
    """

    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=60.0, gt=0)


class SourceSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    provider: str
    base_url: str = Field(pattern=r"^https?://")
    customers: list[str] = Field(min_length=1)
    poll_interval_s: float = Field(default=120.0, gt=0)
    poll_jitter_s: float = Field(default=5.0, ge=0)
    concurrency: int = Field(default=4, ge=1, le=256)
    lookback_days: float = Field(default=30.0, gt=0)
    full_relist_interval_s: float = Field(default=86_400.0, gt=0)
    created_on_baseline: bool = False
    page_size: int = Field(default=100, ge=1, le=100)
    timeout_s: float = Field(default=30.0, gt=0)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    stuck: dict[str, DurationS] = Field(default_factory=dict)
    # The vendor's own table, `[sources.<provider>]` in the file (see `_vendor_table`).
    options: vendors.Options = Field(default_factory=vendors.Options)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, provider: str) -> str:
        if provider not in vendors.NAMES:
            raise ValueError(f"{provider!r} is not one of {', '.join(vendors.NAMES)}")
        return provider

    @model_validator(mode="before")
    @classmethod
    def _vendor_table(cls, data: Any) -> Any:
        """Read `[sources.<provider>]` with the vendor's own model into `options`.

        Errors keep the key as written (`sources.0.elastic_path.customer_filter`); a table
        of another vendor, or of one that has no options, is an unknown key.
        """
        if not isinstance(data, dict) or data.get("provider") not in vendors.NAMES:
            return data
        vendor = vendors.named(data["provider"])
        if vendor.options is None or isinstance(data.get("options"), vendor.options):
            return data
        data = dict(data)
        table = _table_model(vendor.name, vendor.options).model_validate(
            {vendor.name: data.pop(vendor.name, {})}
        )
        data["options"] = getattr(table, vendor.name)
        return data

    def options_as(self, model: type[OptionsT]) -> OptionsT:
        """The source's vendor options, which its adapter knows to be a `model`."""
        if not isinstance(self.options, model):
            raise ConfigError(f"sources.{self.name}", f"has no {model.__name__}")
        return self.options


@functools.cache
def _table_model(name: str, options: type[vendors.Options]) -> type[BaseModel]:
    """A model whose one field, `name`, is a vendor's table: errors then say its key."""
    fields: dict[str, Any] = {name: (options, Field(default_factory=options))}
    return create_model(f"{options.__name__}Table", **fields)


class Settings(_Section):
    store: StoreSettings = Field(default_factory=StoreSettings)
    amqp: AmqpSettings = Field(default_factory=AmqpSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log_format: Literal["plain", "json"] = "plain"
    sources: list[SourceSettings] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        names = [source.name for source in sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {', '.join(repeated)}")
        return sources


def load(path: Path | None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the TOML file (if any), apply the environment, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    _apply_environment(raw, environ)
    return from_mapping(raw)


def from_mapping(raw: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        raise ConfigError(key, error["msg"]) from None


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "WATCHER_CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        _set_path(raw, path, value, name)


def _set_path(node: Any, path: list[str], value: str, name: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise ConfigError(name, f"no list item {head} to override")
        if rest:
            _set_path(node[int(head)], rest, value, name)
        else:
            node[int(head)] = value
    elif not isinstance(node, dict):
        raise ConfigError(name, "overrides a setting that has no sub-settings")
    elif rest:
        _set_path(node.setdefault(head, {}), rest, value, name)
    else:
        node[head] = value
