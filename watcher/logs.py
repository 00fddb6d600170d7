"""Log handler set-up, plain or JSON, and the context fields of a log line.

Only the CLI calls `configure`. A log call that concerns a source, a customer, an order or
an event passes its context as `extra=logs.fields(...)`: plain lines show only the message
(which says the same in words), JSON lines carry each as a field of its own, so a log
pipeline can filter by customer or outcome. JSON lines are written by python-json-logger:

    {"time": "2026-12-03T06:31:51.120Z", "level": "info", "logger": "watcher.poller",
     "message": "poll source=adobe-prod customer=9876543210 ...", "source": "adobe-prod",
     "provider": "adobe_vip", "customer": "9876543210", "outcome": "ok", "duration_s": 0.41}
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.orjson import OrjsonFormatter

_PLAIN = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def fields(
    *,
    source: str | None = None,
    provider: str | None = None,
    customer: str | None = None,
    order: str | None = None,
    event_id: str | None = None,
    outcome: str | None = None,
    duration_s: float | None = None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """The `extra=` of a log call: the context given, `error` as its kind (class name).

    Only the kind of an error is a field: its message is in the log line already, scrubbed
    of secrets where it was made.
    """
    given: dict[str, Any] = {
        "source": source,
        "provider": provider,
        "customer": customer,
        "order": order,
        "event_id": event_id,
        "outcome": outcome,
        "duration_s": None if duration_s is None else round(duration_s, 3),
        "error": None if error is None else type(error).__name__,
    }
    return {key: value for key, value in given.items() if value is not None}


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line: time (UTC), level, logger, message, then the context."""

    def __init__(self) -> None:
        super().__init__(
            ["name", "levelname", "message"],
            rename_fields={"name": "logger", "levelname": "level", "exc_info": "exception"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        moment = datetime.fromtimestamp(record.created, UTC)
        log_data["time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()


def configure(*, style: Literal["plain", "json"] = "plain", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if style == "json" else logging.Formatter(_PLAIN))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aio-pika and aiormq narrate every failed connect; our relay and tail say it once.
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
