"""`python -m watcher.contract [--check]`: rewrite docs/, or report what is out of date."""

from __future__ import annotations

from watcher import contract

raise SystemExit(contract.main())
