"""The part of every simulator's admin API that is the same for all vendors, over HTTP.

Each vendor's fixture module subclasses `SimulatorAdmin` with the calls that shape its own
world (customers, accounts, orders, provisioning, queued errors...) and with `token()`,
which builds that vendor's token request and hands the form to `_token`. What lives here
is what the simulator's generic routes answer alike for every vendor: faults, the request
log, token revocation and a scenario step.

Every call fails the test on a non-2xx reply, naming the method, path, status and body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from watcher.simulator import Simulator


class SimulatorAdmin:
    """A running simulator's generic admin API, with the session the test owns."""

    def __init__(self, session: aiohttp.ClientSession, sim: Simulator[Any]) -> None:
        self._session = session
        self._sim = sim

    async def fault(
        self,
        *,
        kind: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        delay_s: float | None = None,
        count: int = 1,
        path_contains: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register a fault on the vendor API's calls: status, slow, malformed or truncated;
        a status fault answers `body` when given, else the vendor's own error body."""
        spec = {"kind": kind, "status": status, "retry_after_s": retry_after_s, "body": body}
        spec |= {"delay_s": delay_s, "count": count, "path_contains": path_contains}
        body = {key: value for key, value in spec.items() if value is not None}
        return await self._object("POST", "/_admin/faults", body)

    async def page_limit(self, limit: int | None) -> None:
        """Serve at most `limit` orders a page, whatever the client asks (None: the API's)."""
        await self._object("POST", "/_admin/paging", {"page_limit": limit})

    async def clear_faults(self) -> int:
        return int((await self._object("DELETE", "/_admin/faults"))["cleared"])

    async def revoke_tokens(self) -> int:
        """Invalidate every issued token; the next API call gets the vendor's 401."""
        return int((await self._object("POST", "/_admin/tokens/revoke"))["revoked"])

    async def advance(self) -> list[dict[str, Any]]:
        """One scenario step; the changes it made."""
        return list((await self._object("POST", "/_admin/advance"))["changes"])

    async def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (admin calls are not in it)."""
        entries = await self._call("GET", "/_admin/requests")
        assert isinstance(entries, list)
        return entries

    async def clear_requests(self) -> int:
        return int((await self._object("DELETE", "/_admin/requests"))["cleared"])

    async def _token(self, form: Mapping[str, str]) -> str:
        """The access token the real token endpoint gives for `form`."""
        async with self._session.post(self._sim.token_url, data=form) as reply:
            assert reply.status == 200, await reply.text()
            return str((await reply.json())["access_token"])

    async def _object(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        reply = await self._call(method, path, body)
        assert isinstance(reply, dict)
        return reply

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        async with self._session.request(method, self._sim.base_url + path, json=body) as reply:
            assert reply.status < 300, f"{method} {path} -> {reply.status}: {await reply.text()}"
            return await reply.json()
