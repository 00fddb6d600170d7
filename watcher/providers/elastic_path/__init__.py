"""Elastic Path Commerce Cloud: `adapter` (listing, paging, the filters), `replies` (the
reply models) and `mapping` (to canonical orders)."""

from watcher.providers.elastic_path.adapter import DIALECT
from watcher.providers.elastic_path.adapter import ElasticPath as Adapter

__all__ = ["DIALECT", "Adapter"]
