"""One typed settings object, loaded once at the edge and passed down.

Sources: a TOML file (`--config PATH` or WATCHER_CONFIG), then the environment, where
`WATCHER_AMQP__URL` overrides `[amqp] url`, and `WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRET`
(the source's name in capitals, `-` and `.` as `_`) or `WATCHER_SOURCES__0__...` (its
position) overrides a source's key. Every secret may also come from a file (`<key>_file`).
Every mistake becomes one `ConfigProblem` naming the key, and the variable when the value
came from the environment; all of them are raised together as one `ConfigError`.
Secrets are `SecretStr`, so they print as '**********' wherever a setting is shown.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from watcher import vendors
from watcher.core.durations import DurationDays, DurationOrZeroS, DurationS, parse_duration_s
from watcher.core.errors import ConfigError, ConfigProblem

__all__ = ["ConfigError", "Settings", "from_mapping", "load", "parse_duration_s"]

ENV_PREFIX = "WATCHER_"
OptionsT = TypeVar("OptionsT", bound=vendors.Options)
# What Kubernetes injects for a Service named `watcher`: never configuration, never a warning.
_SERVICE_LINKS = re.compile(
    r"^WATCHER_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$"
)
_FILE_SUFFIX = "_file"


def _read_secret_file(path: Any) -> SecretStr:
    """The secret a `*_file` key points at: the file's text without surrounding whitespace."""
    if isinstance(path, SecretStr):
        return path
    if not isinstance(path, str | Path):
        raise ValueError("must be the path of a file holding the secret")
    try:
        return SecretStr(Path(path).read_text().strip())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


SecretFile = Annotated[SecretStr, BeforeValidator(_read_secret_file)]
"""A `<secret>_file` key: a path in the file, the secret it holds once loaded."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Any:
        _fill_secrets_from_files(self)
        return self


def _fill_secrets_from_files(section: BaseModel) -> None:
    """`client_secret_file` fills `client_secret` unless that was given too (which wins)."""
    for name in type(section).model_fields:
        secret = getattr(section, name) if name.endswith(_FILE_SUFFIX) else None
        if not isinstance(secret, SecretStr):
            continue
        target = name.removesuffix(_FILE_SUFFIX)
        given = getattr(section, target)
        if target not in section.model_fields_set or not given or not given.get_secret_value():
            object.__setattr__(section, target, secret)


class StoreSettings(_Section):
    """Where snapshots, poll state and the outbox live: a SQLite file (one process) or a
    PostgreSQL database (any number of replicas). A PostgreSQL password may be in the URL,
    in `password` or `password_file` (either replaces the URL's), or in the environment's
    PGPASSWORD."""

    url: SecretStr = SecretStr("sqlite:///order-watcher.db")
    url_file: SecretFile | None = None
    password: SecretStr | None = None
    password_file: SecretFile | None = None
    # PostgreSQL: how long a replica's claim on a customer lasts without renewal.
    lease_s: DurationS = Field(default=15.0, ge=1.0, le=3600.0)

    @model_validator(mode="after")
    def _password_into_url(self) -> StoreSettings:
        _fill_secrets_from_files(self)  # the password may come from its file
        if self.password is not None:
            object.__setattr__(self, "url", _with_password(self.url, self.password, "watcher"))
        return self


class QueueSettings(_Section):
    """A consumer queue the watcher declares and binds for its consumers."""

    name: str
    bindings: list[str] = Field(default_factory=lambda: ["#"])
    type: Literal["quorum", "classic"] = "quorum"
    dead_letter: bool = True


class AmqpSettings(_Section):
    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    url_file: SecretFile | None = None
    # Replaces the URL's password, so the URL itself can live in a ConfigMap.
    password: SecretStr | None = None
    password_file: SecretFile | None = None
    exchange: str = "order-watcher"
    unroutable_exchange: str = "order-watcher.unroutable"
    unroutable_queue: str = "order-watcher.unroutable"
    publish_window: int = Field(default=256, ge=1, le=10_000)
    relay_batch: int = Field(default=500, ge=1, le=50_000)
    relay_idle_s: DurationS = 1.0
    reconnect_delay_s: DurationS = 2.0
    confirm_timeout_s: DurationS = 30.0
    queues: list[QueueSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _password_into_url(self) -> AmqpSettings:
        _fill_secrets_from_files(self)  # the password may come from its file
        if self.password is not None:
            object.__setattr__(self, "url", _with_password(self.url, self.password, "guest"))
        return self


def _with_password(url: SecretStr, password: SecretStr, default_user: str) -> SecretStr:
    """`url` with its password replaced by `password` (and `default_user` when it names none)."""
    parts = urlsplit(url.get_secret_value())
    user = quote(parts.username or default_user, safe="")
    host = parts.netloc.rpartition("@")[2]
    secret = quote(password.get_secret_value(), safe="")
    return SecretStr(urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}")))


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
    client_secret_file: SecretFile | None = None
    api_key: SecretStr | None = None
    api_key_file: SecretFile | None = None
    scope: str | None = None
    resource: str | None = None
    refresh_token: SecretStr | None = None
    refresh_token_file: SecretFile | None = None
    refresh_before_expiry_s: DurationOrZeroS = 180.0


class RetrySettings(_Section):
    attempts: int = Field(default=5, ge=1, le=20)
    base_delay_s: DurationS = 0.5
    max_delay_s: DurationS = 30.0


class LimitSettings(_Section):
    """Per-source politeness: a request-rate limit and a circuit breaker.

    `rate_per_s` and `burst` default to the vendor's documented limits (see the README).
    After `breaker_failures` failed fetches in a row the source stops calling the vendor
    for `breaker_open_s`, then lets one probe through.
    """

    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: DurationS = 60.0


class SourceSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    provider: str
    base_url: str = Field(pattern=r"^https?://")
    # The customers to poll, or "all": every customer the account lists (`watcher.discovery`).
    customers: list[str] | Literal["all"] = Field(min_length=1)
    discovery_interval_s: DurationS = 3_600.0
    poll_interval_s: DurationS = 120.0
    # The cadence of a customer with an order or line still in flight; poll_interval_s if unset.
    hot_interval_s: DurationS | None = None
    poll_jitter_s: DurationOrZeroS = 5.0
    concurrency: int = Field(default=4, ge=1, le=256)
    lookback_days: DurationDays = 30.0
    full_relist_interval_s: DurationS = 86_400.0
    created_on_baseline: bool = False
    page_size: int = Field(default=100, ge=1, le=100)
    timeout_s: DurationS = 30.0
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

    @model_validator(mode="wrap")
    @classmethod
    def _vendor_table(
        cls, data: Any, handler: ModelWrapValidatorHandler[SourceSettings]
    ) -> SourceSettings:
        """Read `[sources.<provider>]` with the vendor's own model into `options`.

        Errors keep the key as written (`sources.0.elastic_path.customer_filter`) and come
        with the source's other errors; a table of another vendor, or of one that has no
        options, is an unknown key.
        """
        if not isinstance(data, dict) or data.get("provider") not in vendors.NAMES:
            return handler(data)
        vendor = vendors.named(data["provider"])
        if vendor.options is None or isinstance(data.get("options"), vendor.options):
            return handler(data)
        data = dict(data)
        errors: list[InitErrorDetails] = []
        try:
            table = _table_model(vendor.name, vendor.options).model_validate(
                {vendor.name: data.pop(vendor.name, {})}
            )
            data["options"] = getattr(table, vendor.name)
        except ValidationError as exc:
            errors += _details(exc)
        try:
            source = handler(data)
        except ValidationError as exc:
            errors += _details(exc)
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return source

    @model_validator(mode="after")
    def _discoverable(self) -> SourceSettings:
        if self.customers == "all" and not vendors.named(self.provider).watches_all:
            raise ValueError(
                f'customers = "all" is not available for {self.provider}; list the customers'
            )
        return self

    @property
    def discovers(self) -> bool:
        """Whether the customers are the account's, found by listing them."""
        return self.customers == "all" and vendors.named(self.provider).lists_customers

    @property
    def feeds(self) -> bool:
        """Whether a poll reads the orders of the whole store at once (the customers are
        whoever its orders belong to)."""
        return self.customers == "all" and vendors.named(self.provider).feeds_store

    @property
    def fixed_customers(self) -> list[str]:
        """The configured list of customers; empty when they are discovered."""
        return [] if self.customers == "all" else self.customers

    @property
    def hot_cadence_s(self) -> float:
        return self.poll_interval_s if self.hot_interval_s is None else self.hot_interval_s

    def options_as(self, model: type[OptionsT]) -> OptionsT:
        """The source's vendor options, which its adapter knows to be a `model`."""
        if not isinstance(self.options, model):
            raise ConfigError(f"sources.{self.name}", f"has no {model.__name__}")
        return self.options


def _details(exc: ValidationError) -> list[InitErrorDetails]:
    """`exc`'s errors in the form that builds a new ValidationError."""
    return [
        InitErrorDetails(
            type=error["type"], loc=error["loc"], input=error["input"], ctx=error.get("ctx", {})
        )
        for error in exc.errors()
    ]


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


def load(
    path: Path | None,
    environ: Mapping[str, str] = os.environ,
    *,
    notices: list[str] | None = None,
) -> Settings:
    """Read the TOML file (if any), apply the environment, validate.

    `WATCHER_` variables that are not settings are left alone; the ones that look like a
    mistyped setting are described in `notices`, for the caller to log once logging is set.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    problems: list[ConfigProblem] = []
    origins = _apply_environment(raw, environ, problems, [] if notices is None else notices)
    try:
        loaded = from_mapping(raw, origins)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError.of(problems)
    return loaded


def from_mapping(raw: Mapping[str, Any], origins: Mapping[_Loc, str] | None = None) -> Settings:
    """Validate `raw`; `origins` names the variable each environment-given key came from."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems: dict[_Loc, ConfigProblem] = {}
        for error in exc.errors():
            loc = tuple(error["loc"])
            if loc not in problems:  # one line per key, however many checks it failed
                problems[loc] = _problem(loc, error["type"], error["msg"], origins or {})
        raise ConfigError.of(list(problems.values())) from None


_Loc = tuple[str | int, ...]


def _problem(loc: _Loc, kind: str, message: str, origins: Mapping[_Loc, str]) -> ConfigProblem:
    key = ".".join(str(part) for part in loc) or "(top level)"
    if kind == "extra_forbidden":
        message = "unknown key"
        close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1)
        if close:
            message += f"; did you mean {'.'.join(str(part) for part in (*loc[:-1], close[0]))}?"
    elif kind == "missing":
        message = "required, and missing"
    else:
        message = message.removeprefix("Value error, ")
    variable = next((name for at, name in origins.items() if loc[: len(at)] == at), None)
    return ConfigProblem(key, message, variable)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The settings model inside `annotation` (`X`, `X | None`, `list[X]`), if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, types.UnionType, Annotated):
        for arg in get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _origins(annotation: Any) -> list[Any]:
    """The container types of `annotation`, and of each member of a union."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [get_origin(arg) for arg in get_args(annotation)]
    return [get_origin(annotation)]


def _vendor_tables() -> dict[str, type[vendors.Options]]:
    return {vendor.name: vendor.options for vendor in vendors.VENDORS if vendor.options}


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys a table of `model` may hold, as the file spells them."""
    if model is SourceSettings:
        return [name for name in model.model_fields if name != "options"] + list(_vendor_tables())
    return list(model.model_fields)


def _child(model: type[BaseModel], key: str) -> tuple[str, type[BaseModel] | None] | None:
    """What `key` of `model` holds, or None when it has no such key: a "table" of a model,
    "items" (a list of tables), a "free" table of any keys (`[sources.stuck]`), a list of
    "values", or a "value"."""
    if model is SourceSettings and key in _vendor_tables():
        return "table", _vendor_tables()[key]
    field = model.model_fields.get(key)
    if field is None or (model is SourceSettings and key == "options"):
        return None
    child = _submodel(field.annotation)
    if child is None:
        shapes: dict[Any, str] = {dict: "free", list: "values"}
        return next((shapes[o] for o in _origins(field.annotation) if o in shapes), "value"), None
    return ("items" if get_origin(field.annotation) is list else "table"), child


def _keys_at(loc: _Loc) -> list[str]:
    """The valid keys of the table at `loc` (list positions skipped), for "did you mean"."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str):
            found = _child(model, part)
            model = None if found is None else found[1]
    return [] if model is None else _keys(model)


def _apply_environment(
    raw: dict[str, Any],
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
    notices: list[str],
) -> dict[_Loc, str]:
    """Set each `WATCHER_` variable that names a setting into `raw`; the keys each set."""
    origins: dict[_Loc, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == "WATCHER_CONFIG":
            continue
        if _SERVICE_LINKS.match(name):
            continue
        try:
            loc = _environment_key(raw, name)
        except _NotASetting as exc:
            notices.append(f"{name} is not a setting and is ignored{exc.hint}")
            continue
        except ConfigError as exc:
            problems += exc.problems
            continue
        _set(raw, loc, value)
        origins[loc] = name
    return origins


class _NotASetting(Exception):
    def __init__(self, hint: str = "") -> None:
        super().__init__(hint)
        self.hint = hint


def _environment_key(raw: dict[str, Any], name: str) -> _Loc:
    """The key `name` sets, a source's name or position resolved to its index in `raw`."""
    parts = iter(name[len(ENV_PREFIX) :].split("__"))
    loc: list[str | int] = []
    model: type[BaseModel] = Settings
    node: Any = raw
    for part in parts:
        key = part.lower()
        found = _child(model, key)
        if found is None:
            close = difflib.get_close_matches(key, _keys(model), n=1)
            spelled = name[: name.rindex(part)] + close[0].upper() if close else ""
            raise _NotASetting(f"; did you mean {spelled}?" if close else "")
        shape, child = found
        loc.append(key)
        node = node.get(key) if isinstance(node, dict) else None
        if child is not None:
            if shape == "items" and (item := next(parts, None)) is not None:
                index = _item_index(node, loc, item, name)
                loc.append(index)
                node = node[index]
            model = child
            continue
        if shape == "free" and (item := next(parts, None)) is not None:
            loc.append(item.lower())
        elif shape == "values" and (item := next(parts, None)) is not None:
            loc.append(_item_index(node, loc, item, name))
        if next(parts, None) is not None:
            raise ConfigError(name, "overrides a setting that has no sub-settings")
        break
    return tuple(loc)


def _item_index(items: Any, loc: list[str | int], part: str, name: str) -> int:
    """The position in the list at `loc` that `part` names: a number, or a source's name."""
    if not isinstance(items, list):
        raise ConfigError(name, f"no list item {part} to override")
    if part.isdigit():
        if int(part) >= len(items):
            raise ConfigError(name, f"no list item {part} to override")
        return int(part)
    matches = [
        index
        for index, item in enumerate(items)
        if isinstance(item, dict) and _variable_name(str(item.get("name", ""))) == part.upper()
    ]
    if len(matches) != 1:
        names = ", ".join(str(item.get("name")) for item in items if isinstance(item, dict))
        what = "no" if not matches else "more than one"
        raise ConfigError(
            name, f"{what} item of {'.'.join(map(str, loc))} is named {part} ({names})"
        )
    return matches[0]


def _variable_name(source: str) -> str:
    """How a source's name is spelled in a variable: capitals, `-` and `.` as `_`."""
    return re.sub(r"[-.]", "_", source).upper()


def _set(raw: dict[str, Any], loc: _Loc, value: str) -> None:
    node: Any = raw
    for part in loc[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[loc[-1]] = value
