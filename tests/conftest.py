"""Shared fixtures live in tests/plugins/, one module per real service; tests/adobe_api.py
adds `api`, the Adobe API as the simulator tests call it."""

pytest_plugins = [
    "tests.plugins.rabbit",
    "tests.plugins.postgres",
    "tests.plugins.simulator",
    "tests.plugins.partner_center",
    "tests.plugins.elastic_path",
    "tests.plugins.zuora",
    "tests.plugins.vendor",
    "tests.adobe_api",
]
