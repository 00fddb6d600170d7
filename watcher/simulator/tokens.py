"""The bearer tokens a simulated world has issued, each with its expiry on the world's clock.

Every vendor's token endpoint mints tokens its own way (their length and form, and so how
much of the world's Random they draw, stay with the vendor, which keeps seeded worlds the
same on every run) and hands them to a `TokenBook` with their lifetime. The book answers
what the vendor routes ask: is this token live (issued, not expired on the injected clock,
not revoked), and of what kind (Partner Center's app and app+user tokens differ; the other
vendors have one kind). Revocation drops every token at once, for the admin route that
makes the next API call fail with the vendor's 401.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K")


class TokenBook(Generic[K]):
    """Issued tokens -> (expiry, kind), on an injected clock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._issued: dict[str, tuple[datetime, K]] = {}

    def add(self, token: str, *, ttl_s: float, kind: K) -> datetime:
        """Record a freshly minted token living `ttl_s` seconds from now; its expiry."""
        expires_at = self._clock() + timedelta(seconds=ttl_s)
        self._issued[token] = (expires_at, kind)
        return expires_at

    def kind(self, token: str) -> K | None:
        """The kind of a live token; None when unknown, expired or revoked."""
        issued = self._issued.get(token)
        if issued is None or self._clock() >= issued[0]:
            return None
        return issued[1]

    def live(self, token: str) -> bool:
        issued = self._issued.get(token)
        return issued is not None and self._clock() < issued[0]

    def issued(self) -> list[str]:
        """Every token issued and not revoked, live or expired."""
        return list(self._issued)

    def revoke_all(self) -> int:
        """Drop every token; how many there were."""
        revoked, self._issued = len(self._issued), {}
        return revoked


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for any other value."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
