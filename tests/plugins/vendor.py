"""A scripted vendor on a real socket of 127.0.0.1, for the shared client's own tests.

`scripted_vendor` answers each request with the next `Answer` queued in `answers`, or with
`default` once the queue is empty, and records what it was sent (method, path, headers,
form), so a test can say exactly what a vendor replies, headers and body included, and
read back what the client asked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str]


@dataclass
class ScriptedVendor:
    base_url: str = ""
    default: Answer = field(default_factory=Answer)
    answers: deque[Answer] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)

    def then(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    async def answer(self, request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else {}
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.headers),
                {key: str(value) for key, value in form.items()},
            )
        )
        answer = self.answers.popleft() if self.answers else self.default
        return web.Response(
            status=answer.status,
            body=orjson.dumps(answer.body),
            headers=answer.headers,
            content_type="application/json",
        )


@pytest.fixture
async def scripted_vendor() -> AsyncIterator[ScriptedVendor]:
    vendor = ScriptedVendor()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", vendor.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    vendor.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield vendor
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
