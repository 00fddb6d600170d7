"""settings: loading the TOML file, environment overrides, secrets, and every bad input as a
ConfigError that names the key; parse_duration_s.

Each test passes its own environment mapping, so the process environment never leaks in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from watcher import settings, vendors
from watcher.core.errors import ConfigError

SECRET = "s3cr3t-Cl13nt-value"

CONFIG = f"""
[store]
url = "sqlite:///var/lib/order-watcher.db"

[amqp]
url = "amqp://watcher:amqp-password@rabbit:5672/"
exchange = "orders"

[http]
listen = "0.0.0.0:9108"

[[sources]]
name = "adobe-prod"
provider = "adobe_vip"
base_url = "https://partners.adobe.io"
customers = ["9876543210", "1234567890"]
poll_interval_s = 60

[sources.auth]
token_url = "https://ims-na1.adobelogin.com/ims/token/v3"
client_id = "cid"
client_secret = "{SECRET}"
api_key = "api-key-value"

[sources.stuck]
pending = "2h"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "order-watcher.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> settings.Settings:
    return settings.load(write(tmp_path, text), environ or {})


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return caught.value


def test_load_a_file(tmp_path: Path) -> None:
    loaded = load(tmp_path, CONFIG)
    assert loaded.store.url.get_secret_value() == "sqlite:///var/lib/order-watcher.db"
    assert loaded.amqp.url.get_secret_value() == "amqp://watcher:amqp-password@rabbit:5672/"
    assert loaded.amqp.exchange == "orders"
    assert loaded.http.listen == "0.0.0.0:9108"
    (source,) = loaded.sources
    assert source.name == "adobe-prod"
    assert source.provider == "adobe_vip"
    assert source.base_url == "https://partners.adobe.io"
    assert source.customers == ["9876543210", "1234567890"]
    assert source.poll_interval_s == 60.0
    assert source.auth.client_id == "cid"
    assert source.auth.client_secret.get_secret_value() == SECRET
    assert source.auth.api_key is not None
    assert source.auth.api_key.get_secret_value() == "api-key-value"
    assert source.stuck == {"pending": 7200.0}


def test_defaults_without_a_file() -> None:
    loaded = settings.load(None, {})
    assert loaded.store.url.get_secret_value() == "sqlite:///order-watcher.db"
    assert loaded.amqp.exchange == "order-watcher"
    assert loaded.amqp.url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert loaded.http.listen == "127.0.0.1:9108"
    assert loaded.sources == []


def test_defaults_of_a_source(tmp_path: Path) -> None:
    text = CONFIG.replace("poll_interval_s = 60\n", "")
    (source,) = load(tmp_path, text).sources
    assert source.poll_interval_s == 120.0
    assert source.created_on_baseline is False
    assert source.retry.attempts == 5


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        CONFIG,
        {
            "WATCHER_AMQP__EXCHANGE": "orders-staging",
            "WATCHER_SOURCES__0__AUTH__CLIENT_SECRET": "from-the-environment",
            "WATCHER_SOURCES__0__POLL_INTERVAL_S": "15",
            "WATCHER_SOURCES__0__CUSTOMERS__1": "5550001111",
            "WATCHER_CONFIG": "/somewhere/else.toml",
            "PATH": "/usr/bin",
        },
    )
    assert loaded.amqp.exchange == "orders-staging"
    assert loaded.sources[0].auth.client_secret.get_secret_value() == "from-the-environment"
    assert loaded.sources[0].poll_interval_s == 15.0
    assert loaded.sources[0].customers == ["9876543210", "5550001111"]
    assert loaded.amqp.url.get_secret_value() == "amqp://watcher:amqp-password@rabbit:5672/"


def test_the_environment_fills_sections_the_file_lacks(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        '[amqp]\nexchange = "orders"\n',
        {"WATCHER_STORE__URL": "sqlite:///tmp/x.db", "WATCHER_LOG_FORMAT": "json"},
    )
    assert loaded.store.url.get_secret_value() == "sqlite:///tmp/x.db"
    assert loaded.log_format == "json"
    assert loaded.amqp.exchange == "orders"


def test_a_secret_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(f"{SECRET}\n")
    text = CONFIG.replace(
        f'client_secret = "{SECRET}"', f'client_secret_file = "{secret_file.as_posix()}"'
    )
    loaded = load(tmp_path, text)
    assert loaded.sources[0].auth.client_secret.get_secret_value() == SECRET


def test_an_explicit_secret_wins_over_the_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("from-the-file")
    text = CONFIG.replace(
        f'client_secret = "{SECRET}"', f'client_secret_file = "{secret_file.as_posix()}"'
    )
    loaded = load(tmp_path, text, {"WATCHER_SOURCES__0__AUTH__CLIENT_SECRET": "from-env"})
    assert loaded.sources[0].auth.client_secret.get_secret_value() == "from-env"


def test_an_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    text = CONFIG.replace(
        f'client_secret = "{SECRET}"', f'client_secret_file = "{missing.as_posix()}"'
    )
    error = config_error(tmp_path, text)
    assert error.key.startswith("sources.0.auth")
    assert "client_secret_file" in str(error)


def test_secrets_never_show(tmp_path: Path) -> None:
    loaded = load(tmp_path, CONFIG)
    for shown in (repr(loaded), str(loaded), loaded.model_dump_json()):
        assert SECRET not in shown
        assert "api-key-value" not in shown
        assert "amqp-password" not in shown
    assert "**********" in repr(loaded)


BAD_VALUES: list[tuple[str, str, str, str]] = [
    (
        "poll interval zero",
        "poll_interval_s = 60",
        "poll_interval_s = 0",
        "sources.0.poll_interval_s",
    ),
    (
        "poll interval not a number",
        "poll_interval_s = 60",
        'poll_interval_s = "often"',
        "sources.0.poll_interval_s",
    ),
    ("unknown provider", 'provider = "adobe_vip"', 'provider = "shopify"', "sources.0.provider"),
    ("unknown key", 'exchange = "orders"', 'exhange = "orders"', "amqp.exhange"),
    (
        "no customers",
        'customers = ["9876543210", "1234567890"]',
        "customers = []",
        "sources.0.customers",
    ),
    (
        "base url without a scheme",
        'base_url = "https://partners.adobe.io"',
        'base_url = "partners.adobe.io"',
        "sources.0.base_url",
    ),
    ("bad source name", 'name = "adobe-prod"', 'name = "adobe prod"', "sources.0.name"),
    ("unknown top-level key", "[store]", "[storage]", "storage"),
    (
        "unknown auth key",
        'client_id = "cid"',
        'clientid = "cid"',
        "sources.0.auth.clientid",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key"), [case[1:] for case in BAD_VALUES], ids=[case[0] for case in BAD_VALUES]
)
def test_a_bad_value_names_its_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in CONFIG
    error = config_error(tmp_path, CONFIG.replace(old, new, 1))
    assert error.key == key
    assert error.problem
    assert str(error).startswith(f"{key}: ")


def test_a_bad_value_from_the_environment_names_its_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG, {"WATCHER_SOURCES__0__POLL_INTERVAL_S": "soon"})
    assert error.key == "sources.0.poll_interval_s"


def test_an_override_of_a_missing_list_item_names_the_variable(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG, {"WATCHER_SOURCES__1__NAME": "adobe-test"})
    assert error.key == "WATCHER_SOURCES__1__NAME"


def test_an_override_below_a_scalar_names_the_variable(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG, {"WATCHER_SOURCES__0__NAME__FIRST": "adobe"})
    assert error.key == "WATCHER_SOURCES__0__NAME__FIRST"


def test_bad_config_errors_do_not_show_secrets(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG.replace("poll_interval_s = 60", "poll_interval_s = 0"))
    assert SECRET not in str(error)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[amqp\nexchange = 1\n")
    with pytest.raises(ConfigError) as caught:
        settings.load(path, {})
    assert caught.value.key == str(path)
    assert "not valid TOML" in caught.value.problem


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        settings.load(path, {})
    assert caught.value.key == str(path)
    assert "cannot read" in caught.value.problem


DUPLICATE = CONFIG + CONFIG[CONFIG.index("[[sources]]") :]


def test_duplicate_source_names(tmp_path: Path) -> None:
    error = config_error(tmp_path, DUPLICATE)
    assert "unique" in error.problem


def test_duplicate_source_names_name_the_sources_key(tmp_path: Path) -> None:
    assert config_error(tmp_path, DUPLICATE).key == "sources"


def test_a_stuck_threshold_must_be_a_duration(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG.replace('pending = "2h"', 'pending = "soon"'))
    assert error.key == "sources.0.stuck.pending"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("30", 30.0),
        (" 2 h ", 7200.0),
        ("0s", 0.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_s(text: str | float, seconds: float) -> None:
    assert settings.parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "2 hours", "-5s", "h", "1.5.h", "2w", "1h30m"])
def test_parse_duration_s_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        settings.parse_duration_s(text)


def test_the_readme_configuration_block_loads(tmp_path: Path) -> None:
    """The README's "every key" example is a valid configuration, so the two cannot drift."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"Every key, with its default:\n\n```toml\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README.md lost its configuration example"

    loaded = settings.load(write(tmp_path, block.group(1)), {})

    assert [source.provider for source in loaded.sources] == ["adobe_vip"]
    assert loaded.amqp.queues[0].dead_letter


# --- a vendor's own table ---------------------------------------------------------------

EP_SOURCE = """
[[sources]]
name = "ep"
provider = "elastic_path"
base_url = "https://useast.api.elasticpath.com"
customers = ["c1"]
"""


def test_a_vendor_table_is_read_with_the_vendors_model(tmp_path: Path) -> None:
    loaded = load(tmp_path, EP_SOURCE + '[sources.elastic_path]\ncustomer_filter = "account_id"\n')
    options = loaded.sources[0].options_as(vendors.ElasticPathOptions)
    assert (options.customer_filter, options.updated_overlap_s) == ("account_id", 300.0)


def test_a_missing_vendor_table_takes_the_vendors_defaults(tmp_path: Path) -> None:
    options = load(tmp_path, EP_SOURCE).sources[0].options_as(vendors.ElasticPathOptions)
    assert options == vendors.ElasticPathOptions()


def test_a_bad_vendor_value_names_its_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, EP_SOURCE + '[sources.elastic_path]\ncustomer_filter = "x"\n')
    assert error.key == "sources.0.elastic_path.customer_filter"


def test_an_unknown_vendor_key_names_its_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, EP_SOURCE + "[sources.elastic_path]\noverlap = 3\n")
    assert error.key == "sources.0.elastic_path.overlap"


def test_another_vendors_table_is_an_unknown_key(tmp_path: Path) -> None:
    error = config_error(tmp_path, EP_SOURCE + "[sources.partner_center]\nprovisioning = true\n")
    assert error.key == "sources.0.partner_center"


def test_an_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    error = config_error(tmp_path, EP_SOURCE.replace('"elastic_path"', '"shopify"'))
    assert error.key == "sources.0.provider"
    assert all(name in error.problem for name in vendors.NAMES)


# --- several mistakes at once, and what each line says --------------------------------


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        CONFIG.replace('exchange = "orders"', 'exhange = "orders"')
        .replace("poll_interval_s = 60", "poll_interval_s = 0")
        .replace('client_id = "cid"', 'clientid = "cid"')
    )
    error = config_error(tmp_path, text + EP_SOURCE + "[sources.elastic_path]\noverlap = 3\n")
    assert [problem.key for problem in error.problems] == [
        "amqp.exhange",
        "sources.0.poll_interval_s",
        "sources.0.auth.clientid",
        "sources.1.elastic_path.overlap",
    ]


def test_a_vendor_tables_mistake_comes_with_the_sources_others(tmp_path: Path) -> None:
    text = EP_SOURCE.replace('customers = ["c1"]', "customers = []")
    error = config_error(tmp_path, text + '[sources.elastic_path]\ncustomer_filter = "x"\n')
    assert {problem.key for problem in error.problems} == {
        "sources.0.elastic_path.customer_filter",
        "sources.0.customers",
    }


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            'url = "amqp://watcher',
            'urll = "amqp://watcher',
            "amqp.urll: unknown key; did you mean amqp.url?",
        ),
        ("[store]", "[stor]", "stor: unknown key; did you mean store?"),
        (
            "poll_interval_s = 60",
            "pol_interval_s = 60",
            "sources.0.pol_interval_s: unknown key; did you mean sources.0.poll_interval_s?",
        ),
        (
            'client_id = "cid"',
            'client_idd = "cid"',
            "sources.0.auth.client_idd: unknown key; did you mean sources.0.auth.client_id?",
        ),
        ('exchange = "orders"', 'zzz = "orders"', "amqp.zzz: unknown key"),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(
    tmp_path: Path, old: str, new: str, line: str
) -> None:
    assert str(config_error(tmp_path, CONFIG.replace(old, new, 1))) == line


def test_a_mistyped_vendor_table_key_names_the_closest_one(tmp_path: Path) -> None:
    error = config_error(tmp_path, EP_SOURCE + '[sources.elastic_path]\ncustomer_filtr = "x"\n')
    assert error.problem == ("unknown key; did you mean sources.0.elastic_path.customer_filter?")


def test_a_value_from_the_environment_names_its_variable(tmp_path: Path) -> None:
    variable = "WATCHER_SOURCES__ADOBE_PROD__POLL_INTERVAL_S"
    error = config_error(tmp_path, CONFIG, {variable: "soon"})
    (problem,) = error.problems
    assert (problem.key, problem.variable) == ("sources.0.poll_interval_s", variable)
    assert str(problem).startswith(f"sources.0.poll_interval_s (from {variable}): ")


def test_a_missing_key_says_so(tmp_path: Path) -> None:
    error = config_error(tmp_path, CONFIG.replace('base_url = "https://partners.adobe.io"\n', ""))
    assert str(error) == "sources.0.base_url: required, and missing"


# --- one duration type for every duration key -------------------------------------------


def _duration_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """Every `*_s` key of the settings tree (vendor tables included), with its model."""
    found: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        child = settings._submodel(field.annotation)
        if child is not None and child is not vendors.Options:
            found += _duration_keys(child, f"{prefix}{name}.")
        elif name.endswith(("_s", "_days")) and not name.endswith("_per_s"):
            found.append((f"{prefix}{name}", model))
    return found


A_SOURCE = {"name": "s", "provider": "zuora", "base_url": "https://z", "customers": ["c"]}
DURATION_KEYS = _duration_keys(settings.Settings) + [
    (f"sources.{vendor.name}.{name}", vendor.options)
    for vendor in vendors.VENDORS
    if vendor.options
    for name in vendor.options.model_fields
    if name.endswith("_s")
]


def test_the_duration_keys_are_the_ones_expected() -> None:
    """A new duration key joins the parametrized test below by its name alone."""
    assert {key for key, _ in DURATION_KEYS} == {
        "amqp.relay_idle_s",
        "store.lease_s",
        "amqp.reconnect_delay_s",
        "amqp.confirm_timeout_s",
        "sources.discovery_interval_s",
        "sources.poll_interval_s",
        "sources.hot_interval_s",
        "sources.poll_jitter_s",
        "sources.lookback_days",
        "sources.full_relist_interval_s",
        "sources.timeout_s",
        "sources.auth.refresh_before_expiry_s",
        "sources.retry.base_delay_s",
        "sources.retry.max_delay_s",
        "sources.limits.breaker_open_s",
        "sources.elastic_path.updated_overlap_s",
    }


@pytest.mark.parametrize(("key", "model"), DURATION_KEYS, ids=[key for key, _ in DURATION_KEYS])
def test_every_duration_key_takes_a_duration_text(key: str, model: type[BaseModel]) -> None:
    name = key.rsplit(".", 1)[1]
    in_days = name.endswith("_days")
    required = A_SOURCE if model is settings.SourceSettings else {}
    parsed = model.model_validate({**required, name: "36h" if in_days else "2m"})
    assert getattr(parsed, name) == (1.5 if in_days else 120.0)
    assert getattr(model.model_validate({**required, name: 7}), name) == 7.0
    with pytest.raises(ValidationError, match="is not a duration"):
        model.model_validate({**required, name: "soon"})


def test_a_duration_in_the_file_and_the_environment(tmp_path: Path) -> None:
    text = CONFIG.replace("poll_interval_s = 60", 'poll_interval_s = "2m"')
    loaded = load(
        tmp_path,
        text + '[sources.retry]\nmax_delay_s = "1m"\n',
        {
            "WATCHER_AMQP__CONFIRM_TIMEOUT_S": "90s",
            "WATCHER_SOURCES__0__LOOKBACK_DAYS": "2d",
        },
    )
    (source,) = loaded.sources
    assert (source.poll_interval_s, source.retry.max_delay_s) == (120.0, 60.0)
    assert (loaded.amqp.confirm_timeout_s, source.lookback_days) == (90.0, 2.0)


# --- secrets by name, and from files ----------------------------------------------------

TWO_SOURCES = CONFIG + EP_SOURCE.replace('name = "ep"', 'name = "ep.us-east"')


def test_a_secret_by_the_sources_name_reaches_that_source(tmp_path: Path) -> None:
    environ = {
        "WATCHER_SOURCES__EP_US_EAST__AUTH__CLIENT_SECRET": "ep-secret",
        "WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRET": "adobe-secret",
    }
    first = load(tmp_path, TWO_SOURCES, environ)
    # The same variables with the sources the other way round: each secret follows its name.
    swapped = CONFIG[: CONFIG.index("[[sources]]")] + (
        EP_SOURCE.replace('name = "ep"', 'name = "ep.us-east"')
        + CONFIG[CONFIG.index("[[sources]]") :]
    )
    second = load(tmp_path, swapped, environ)
    for loaded in (first, second):
        secrets = {s.name: s.auth.client_secret.get_secret_value() for s in loaded.sources}
        assert secrets == {"adobe-prod": "adobe-secret", "ep.us-east": "ep-secret"}
    assert [s.name for s in second.sources] == ["ep.us-east", "adobe-prod"]


def test_a_secret_for_a_source_that_is_not_there_is_a_mistake(tmp_path: Path) -> None:
    variable = "WATCHER_SOURCES__ADOBE_TEST__AUTH__CLIENT_SECRET"
    error = config_error(tmp_path, TWO_SOURCES, {variable: "a-secret-value"})
    assert error.key == variable
    assert "adobe-prod, ep.us-east" in error.problem
    assert "a-secret-value" not in str(error)


def test_two_sources_spelled_alike_are_a_mistake_for_a_name(tmp_path: Path) -> None:
    text = CONFIG + EP_SOURCE.replace('name = "ep"', 'name = "adobe.prod"')
    error = config_error(tmp_path, text, {"WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_ID": "x"})
    assert "more than one" in error.problem


SECRET_KEYS = [
    (section, name)
    for section in (settings.AmqpSettings, settings.AuthSettings, settings.StoreSettings)
    for name, field in section.model_fields.items()
    if "SecretStr" in str(field.annotation) and not name.endswith("_file")
]


def test_every_secret_has_a_file_variant() -> None:
    secrets = {(section.__name__, name) for section, name in SECRET_KEYS}
    assert secrets == {
        ("AmqpSettings", "url"),
        ("AmqpSettings", "password"),
        ("AuthSettings", "client_secret"),
        ("AuthSettings", "api_key"),
        ("AuthSettings", "refresh_token"),
        ("StoreSettings", "url"),
        ("StoreSettings", "password"),
    }
    for section, name in SECRET_KEYS:
        assert f"{name}_file" in section.model_fields


@pytest.mark.parametrize(
    ("section", "name"), SECRET_KEYS, ids=[f"{s.__name__}.{n}" for s, n in SECRET_KEYS]
)
def test_each_secret_file_fills_its_secret(
    tmp_path: Path, section: type[BaseModel], name: str
) -> None:
    secret_file = tmp_path / name
    secret_file.write_text("amqp://u:from-file@rabbit/\n" if name == "url" else "from-file\n")
    loaded = section.model_validate({f"{name}_file": str(secret_file)})
    value = getattr(loaded, name).get_secret_value()
    assert "from-file" in value
    assert "from-file" not in repr(loaded)


def test_the_amqp_password_replaces_the_urls(tmp_path: Path) -> None:
    password_file = tmp_path / "amqp-password"
    password_file.write_text("p@ss/word\n")
    loaded = load(tmp_path, CONFIG, {"WATCHER_AMQP__PASSWORD_FILE": str(password_file)})
    assert loaded.amqp.url.get_secret_value() == "amqp://watcher:p%40ss%2Fword@rabbit:5672/"
    assert "p@ss" not in repr(loaded.amqp)


def test_the_store_password_replaces_the_urls_and_never_shows(tmp_path: Path) -> None:
    password_file = tmp_path / "db-password"
    password_file.write_text("s3cret:/@\n")
    url = 'url = "postgresql://watcher@db.internal:5432/orders"'
    text = CONFIG.replace('url = "sqlite:///var/lib/order-watcher.db"', url)
    environ = {"WATCHER_STORE__PASSWORD_FILE": str(password_file)}

    loaded = load(tmp_path, text, environ)

    expected = "postgresql://watcher:s3cret%3A%2F%40@db.internal:5432/orders"
    assert loaded.store.url.get_secret_value() == expected
    assert "s3cret" not in repr(loaded)
    assert "s3cret" not in loaded.model_dump_json()


def test_an_unreadable_secret_file_names_its_variable(tmp_path: Path) -> None:
    variable = "WATCHER_SOURCES__ADOBE_PROD__AUTH__API_KEY_FILE"
    error = config_error(tmp_path, CONFIG, {variable: str(tmp_path / "absent")})
    assert (error.key, error.problems[0].variable) == ("sources.0.auth.api_key_file", variable)
    assert "No such file" in error.problem


# --- variables that are not configuration -----------------------------------------------

SERVICE_LINKS = {
    "WATCHER_PORT": "tcp://10.0.0.1:9108",
    "WATCHER_PORT_9108_TCP": "tcp://10.0.0.1:9108",
    "WATCHER_PORT_9108_TCP_ADDR": "10.0.0.1",
    "WATCHER_PORT_9108_TCP_PORT": "9108",
    "WATCHER_PORT_9108_TCP_PROTO": "tcp",
    "WATCHER_SERVICE_HOST": "10.0.0.1",
    "WATCHER_SERVICE_PORT": "9108",
    "WATCHER_SERVICE_PORT_METRICS": "9108",
}


def test_a_kubernetes_service_s_variables_are_ignored_quietly(tmp_path: Path) -> None:
    notices: list[str] = []
    loaded = settings.load(write(tmp_path, CONFIG), SERVICE_LINKS, notices=notices)
    assert loaded.http.listen == "0.0.0.0:9108"
    assert notices == []


@pytest.mark.parametrize(
    ("variable", "notice"),
    [
        (
            "WATCHER_AMQP__URLL",
            "WATCHER_AMQP__URLL is not a setting and is ignored; did you mean WATCHER_AMQP__URL?",
        ),
        (
            "WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRT",
            "WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRT is not a setting and is ignored;"
            " did you mean WATCHER_SOURCES__ADOBE_PROD__AUTH__CLIENT_SECRET?",
        ),
        (
            "WATCHER_LOGFORMAT",
            "WATCHER_LOGFORMAT is not a setting and is ignored; did you mean WATCHER_LOG_FORMAT?",
        ),
        ("WATCHER_HOME", "WATCHER_HOME is not a setting and is ignored"),
    ],
)
def test_a_variable_that_is_not_a_setting_is_a_notice(
    tmp_path: Path, variable: str, notice: str
) -> None:
    notices: list[str] = []
    loaded = settings.load(write(tmp_path, CONFIG), {variable: "x"}, notices=notices)
    assert notices == [notice]
    assert loaded.amqp.url.get_secret_value() == "amqp://watcher:amqp-password@rabbit:5672/"
