"""Microsoft Partner Center: `adapter` (the collection, the window, provisioning and what it
learnt), `replies` (the reply models) and `mapping` (to canonical orders)."""

from watcher.providers.partner_center.adapter import DIALECT
from watcher.providers.partner_center.adapter import PartnerCenter as Adapter

__all__ = ["DIALECT", "Adapter"]
