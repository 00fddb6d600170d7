"""The vendor packages of the simulator share one layout and one interface.

The application's vendor registry finds a simulated vendor by convention: a package under
`watcher.simulator` named after the provider, holding the same modules, and offering
`NAME`, `CREDENTIALS`, `api(state)` and `seeded(...)`. These tests hold every package to it.
"""

from __future__ import annotations

import importlib
import random
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

import watcher.simulator
from watcher.simulator import Credentials, VendorApi

VENDORS = ("adobe_vip", "partner_center", "elastic_path", "zuora")
REQUIRED_MODULES = {"__init__.py", "world.py", "orders.py", "routes.py", "admin.py", "scenario.py"}
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SIMULATOR = Path(watcher.simulator.__file__).parent


def vendor(name: str) -> ModuleType:
    return importlib.import_module(f"watcher.simulator.{name}")


def test_every_vendor_package_is_listed_here() -> None:
    packages = {path.parent.name for path in SIMULATOR.glob("*/__init__.py")}
    assert packages == set(VENDORS)


@pytest.mark.parametrize("name", VENDORS)
def test_a_vendor_package_has_the_required_modules(name: str) -> None:
    modules = {path.name for path in (SIMULATOR / name).glob("*.py")}
    assert modules >= REQUIRED_MODULES


@pytest.mark.parametrize("name", VENDORS)
def test_a_vendor_package_offers_the_interface(name: str) -> None:
    package = vendor(name)
    assert name == package.NAME
    assert isinstance(package.CREDENTIALS, Credentials)
    assert package.CREDENTIALS.client_id
    assert package.CREDENTIALS.client_secret
    assert callable(package.api)
    api, ids = package.seeded(customers=2, orders_per_customer=3, now=NOW, rng=random.Random(1))
    assert isinstance(api, VendorApi)
    assert api.name == package.NAME
    assert len(ids) == 2
    assert package.api(api.state).name == package.NAME


@pytest.mark.parametrize("name", VENDORS)
def test_a_seeded_world_accepts_its_credentials(name: str) -> None:
    package = vendor(name)
    api, _ = package.seeded(customers=1, orders_per_customer=1, now=NOW, rng=random.Random(1))
    credentials = package.CREDENTIALS
    assert api.state.accepts(credentials.client_id, credentials.client_secret)
    assert not api.state.accepts(credentials.client_id, "not-the-secret")


def test_only_partner_center_has_a_refresh_token() -> None:
    with_refresh = {name for name in VENDORS if vendor(name).CREDENTIALS.refresh_token}
    assert with_refresh == {"partner_center"}
