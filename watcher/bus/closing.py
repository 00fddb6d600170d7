"""Stopping while the broker connection is being made or closed.

A connection cut short in its handshake (a stop that comes while it connects) may never get
the broker's answer to its close, and a service that is stopping must not wait for it:
`close_within` gives up after `CLOSE_TIMEOUT_S`, says so, and lets the stop go on.

A cancellation that comes while aio-pika connects can be caught inside the library, and
the connect then returns as if nothing happened: the caller runs on, cancelled in name
only, and a stop waits for it for ever. `raise_if_cancelled` after each connect re-raises
it.
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task was asked to stop and is still running:
    a library swallowed the cancellation."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def close_within(
    connection: AbstractConnection, *, what: str, timeout_s: float = CLOSE_TIMEOUT_S
) -> None:
    """Close `connection`; a failure to close, or no answer within `timeout_s`, is logged
    and otherwise ignored. `what` names the connection (never with its credentials)."""
    try:
        async with asyncio.timeout(timeout_s):
            await connection.close()
    except TimeoutError:
        log.warning("%s: the broker did not answer the close within %gs; left", what, timeout_s)
    except CONNECTION_EXCEPTIONS as exc:
        log.debug("%s: closing failed: %s", what, type(exc).__name__)
