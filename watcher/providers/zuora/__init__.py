"""Zuora Quickstart API v2: `adapter` (cursor paging, the update-time window, line item
continuation), `replies` (the reply and error models) and `mapping` (to canonical orders)."""

from watcher.providers.zuora.adapter import DIALECT
from watcher.providers.zuora.adapter import Zuora as Adapter

__all__ = ["DIALECT", "Adapter"]
