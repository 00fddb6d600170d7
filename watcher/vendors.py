"""The vendors order-watcher watches: each one named once, here.

A line of `VENDORS` is all the rest of the program knows of a vendor: its `provider` name
(the config's `provider = "..."`, and the name of its folders), what to call it, its
politeness defaults (the vendor's documented rate limit, see the README), and the model
of its own `[sources.<name>]` table, if it has one. The code of a vendor lives in two
folders named after it, found from this name:

    watcher/providers/<name>/    the adapter: `Adapter` and its `DIALECT` (`providers.connect`)
    watcher/simulator/<name>/    the simulated vendor: `seeded`, `CREDENTIALS` (demo, simulate)

Settings read the names and option models, `providers.connect` builds the adapters, the
demo and `order-watcher simulate` serve the simulators; a test checks that every line has
both folders and every folder a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from watcher.core.durations import DurationOrZeroS
from watcher.core.errors import ConfigError


class Options(BaseModel):
    """Base of a vendor's own settings table: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AdobeVipOptions(Options):
    # Whose customers `customers = "all"` means: the reseller the credentials act for.
    reseller_id: str | None = Field(default=None, min_length=1)


class PartnerCenterOptions(Options):
    provisioning: bool = True  # ask provisioningstatus (needs auth.refresh_token)


class ElasticPathOptions(Options):
    customer_filter: Literal["customer_id", "account_id"] = "customer_id"
    updated_overlap_s: DurationOrZeroS = 300.0


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    title: str
    rate_per_s: float
    burst: int
    options: type[Options] | None = None
    # `customers = "all"` lists the customers (a CustomerDirectory) or reads the orders of
    # the whole store at once (a StoreFeed).
    lists_customers: bool = False
    feeds_store: bool = False

    @property
    def watches_all(self) -> bool:
        return self.lists_customers or self.feeds_store


VENDORS: tuple[Vendor, ...] = (
    # Adobe documents no rate limit ("no limiting is done"), yet has a 429 code: stay modest.
    Vendor("adobe_vip", "Adobe VIP Marketplace", 10.0, 20, AdobeVipOptions, lists_customers=True),
    # "500 requests per minute per tenant identifier"
    Vendor(
        "partner_center",
        "Microsoft Partner Center",
        500 / 60,
        20,
        PartnerCenterOptions,
        lists_customers=True,
    ),
    # 100/s per production store, 25 per development store, shared with the storefront.
    Vendor(
        "elastic_path",
        "Elastic Path Commerce Cloud",
        10.0,
        10,
        ElasticPathOptions,
        feeds_store=True,
    ),
    # 50,000 requests a minute per tenant; its RateLimit-* headers pause a source sooner.
    Vendor("zuora", "Zuora", rate_per_s=50_000 / 60, burst=100, feeds_store=True),
)
NAMES: tuple[str, ...] = tuple(vendor.name for vendor in VENDORS)


def named(name: str) -> Vendor:
    """The vendor called `name`, or ConfigError listing the ones there are."""
    for vendor in VENDORS:
        if vendor.name == name:
            return vendor
    raise ConfigError("provider", f"{name!r} is not one of {', '.join(NAMES)}")
