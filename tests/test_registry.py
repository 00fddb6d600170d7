"""The vendor registry (`watcher.vendors`) and the folders it names.

Every line of the registry has its adapter folder and its simulator folder, with the files
every vendor has; every vendor folder has its line; the adapter package exports what
`providers.connect` builds from, and the demo serves exactly the registry's vendors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher import demo, vendors
from watcher.core.errors import ConfigError
from watcher.providers import connect
from watcher.providers.client import Dialect

WATCHER = Path(vendors.__file__).parent
ADAPTER_FILES = {"__init__.py", "adapter.py", "replies.py", "mapping.py"}


def vendor_folders(package: str) -> set[str]:
    return {
        path.name
        for path in (WATCHER / package).iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }


@pytest.mark.parametrize("package", ["providers", "simulator"])
def test_every_vendor_folder_has_its_registry_line_and_every_line_its_folder(
    package: str,
) -> None:
    assert vendor_folders(package) == set(vendors.NAMES)


@pytest.mark.parametrize("name", vendors.NAMES)
def test_every_adapter_folder_has_the_same_files(name: str) -> None:
    files = {path.name for path in (WATCHER / "providers" / name).glob("*.py")}
    assert files == ADAPTER_FILES


@pytest.mark.parametrize("name", vendors.NAMES)
def test_every_adapter_package_exports_its_adapter_and_dialect(name: str) -> None:
    package = connect.package(name)
    assert isinstance(package.DIALECT, Dialect)
    assert callable(package.Adapter)


def test_names_are_unique_and_rates_positive() -> None:
    assert len(set(vendors.NAMES)) == len(vendors.VENDORS)
    assert all(vendor.rate_per_s > 0 and vendor.burst >= 1 for vendor in vendors.VENDORS)


def test_an_unknown_name_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="is not one of adobe_vip"):
        vendors.named("shopify")


def test_the_demo_serves_the_registrys_vendors() -> None:
    assert [(v.provider, v.title) for v in demo.VENDORS] == [
        (vendor.name, vendor.title) for vendor in vendors.VENDORS
    ]
