"""Adobe VIP Marketplace: `adapter` (listing and paging), `replies` (the reply models) and
`mapping` (to canonical orders)."""

from watcher.providers.adobe_vip.adapter import DIALECT
from watcher.providers.adobe_vip.adapter import AdobeVip as Adapter

__all__ = ["DIALECT", "Adapter"]
