"""The private PostgreSQL server of tests/plugins/postgres.py, seen through asyncpg."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.plugins import postgres
from tests.plugins.postgres import Cluster

USER_TABLES = (
    "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
)
_seen_databases: list[str] = []


async def test_pg_url_logs_in_as_watcher_who_owns_the_database_and_may_create_tables(
    pg_url: str,
) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        row = await conn.fetchrow(
            "SELECT current_user, current_database(), pg_get_userbyid(datdba)"
            " FROM pg_database WHERE datname = current_database()"
        )
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    finally:
        await conn.close()
    assert row is not None
    user, database, owner = row
    assert (user, owner) == ("watcher", "watcher")
    assert database == urlsplit(pg_url).path.lstrip("/")


async def test_a_wrong_password_is_refused(pg_url: str) -> None:
    url = urlsplit(pg_url)
    wrong = url._replace(netloc=f"watcher:not-the-password@{url.hostname}:{url.port}")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong.geturl())


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_a_different_empty_database(pg_url: str, run: int) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        database = await conn.fetchval("SELECT current_database()")
        tables = await conn.fetchval(USER_TABLES)
        earlier = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = any($1::text[])", _seen_databases
        )
        await conn.execute("CREATE TABLE left_behind (id int)")
    finally:
        await conn.close()
    assert tables == 0
    assert database not in _seen_databases
    assert earlier == 0, "the database of an earlier test was not dropped"
    _seen_databases.append(database)


async def test_stop_refuses_connections_and_start_serves_the_same_data_again(
    pg_outage_cluster: Cluster,
) -> None:
    cluster = pg_outage_cluster
    cluster.create_database("outage")
    url = cluster.url_for("outage")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (7)")
        await asyncio.to_thread(cluster.stop)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    assert not cluster.running
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(url)

    await asyncio.to_thread(cluster.start)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT id FROM t") == 7
    finally:
        await conn.close()


def test_a_start_that_fails_names_the_log_and_close_removes_the_folder() -> None:
    cluster = Cluster.create("taken-port")
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", cluster.port))
            squatter.listen()
            with pytest.raises(RuntimeError, match="did not start") as failure:
                cluster.start()
        assert "could not bind" in str(failure.value)
        assert not cluster.running
    finally:
        cluster.close()
    assert not cluster.root.exists()


def test_missing_binaries_point_at_the_install_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "BIN_GLOB", "/nonexistent/postgresql/*/bin")
    with pytest.raises(pytest.fail.Exception, match=r"install-services\.sh"):
        Cluster.create("missing")
