"""Shared fixtures live in tests/plugins/, one module per real service."""

pytest_plugins = [
    "tests.plugins.rabbit",
    "tests.plugins.simulator",
    "tests.plugins.partner_center",
    "tests.plugins.elastic_path",
    "tests.plugins.zuora",
    "tests.plugins.vendor",
]
