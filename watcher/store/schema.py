"""The SQLite store's tables, their numbered migrations and the statements it runs.

A database records the migrations applied to it in `PRAGMA user_version`; opening one
(`sqlite_connection.connect`) runs the missing steps in one transaction, so a database
written by an older order-watcher is upgraded in place. A step is never edited once
released: a change to the schema is a new step at the end.

    1  snapshots, outbox, poll_state
    2  snapshots.status_since, snapshots.stuck_reported: the stuck-order episode; rows
       written before it read as "since unknown" and "not reported"
    3  poll_state.next_due_at, poll_state.in_flight (a JSON array of order ids): each
       customer's schedule and what keeps it hot; customers: the customers a source
       discovered (`listed` 0 once a later listing no longer has them)
    4  snapshots.fingerprint: the digest of the stored order's essence
       (`essence.fingerprint`); NULL in rows written before it, filled in when such a row
       is next read
    5  snapshots.digest: the digest of the vendor's JSON the order was read from
       (`ports.Listing`); NULL in rows written before it (and, until step 6, for an order
       in flight)
    6  snapshots.status, snapshots.status_raw: the stored order's status, so that an order
       in flight listed as before is judged stuck from its row (`ports.Episode`); filled in
       from the stored bodies
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS snapshots (
            source TEXT NOT NULL, customer_id TEXT NOT NULL, order_id TEXT NOT NULL,
            sequence INTEGER NOT NULL, body BLOB NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (source, order_id)) STRICT""",
        "CREATE INDEX IF NOT EXISTS snapshots_by_customer ON snapshots (source, customer_id)",
        """CREATE TABLE IF NOT EXISTS outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL, routing_key TEXT NOT NULL, body BLOB NOT NULL,
            created_at TEXT NOT NULL, published_at TEXT) STRICT""",
        """CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq, created_at)
            WHERE published_at IS NULL""",
        """CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at)
            WHERE published_at IS NOT NULL""",
        """CREATE TABLE IF NOT EXISTS poll_state (
            source TEXT NOT NULL, customer_id TEXT NOT NULL, baseline_done INTEGER NOT NULL,
            last_success_at TEXT, last_full_sync_at TEXT,
            PRIMARY KEY (source, customer_id)) STRICT""",
    ),
    (
        "ALTER TABLE snapshots ADD COLUMN status_since TEXT",
        "ALTER TABLE snapshots ADD COLUMN stuck_reported INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "ALTER TABLE poll_state ADD COLUMN next_due_at TEXT",
        "ALTER TABLE poll_state ADD COLUMN in_flight TEXT NOT NULL DEFAULT '[]'",
        """CREATE TABLE IF NOT EXISTS customers (
            source TEXT NOT NULL, customer_id TEXT NOT NULL, listed INTEGER NOT NULL,
            PRIMARY KEY (source, customer_id)) STRICT""",
    ),
    ("ALTER TABLE snapshots ADD COLUMN fingerprint TEXT",),
    ("ALTER TABLE snapshots ADD COLUMN digest TEXT",),
    (
        "ALTER TABLE snapshots ADD COLUMN status TEXT",
        "ALTER TABLE snapshots ADD COLUMN status_raw TEXT",
        """UPDATE snapshots SET status = json_extract(CAST(body AS TEXT), '$.status'),
            status_raw = json_extract(CAST(body AS TEXT), '$.status_raw')""",
    ),
)
VERSION = len(MIGRATIONS)

UPSERT_SNAPSHOT = """
    INSERT INTO snapshots (
        source, customer_id, order_id, sequence, body, updated_at, status_since, stuck_reported,
        fingerprint, digest, status, status_raw
    )
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (source, order_id) DO UPDATE SET customer_id = excluded.customer_id,
        sequence = excluded.sequence, body = excluded.body, updated_at = excluded.updated_at,
        status_since = excluded.status_since, stuck_reported = excluded.stuck_reported,
        fingerprint = excluded.fingerprint, digest = excluded.digest,
        status = excluded.status, status_raw = excluded.status_raw"""
SELECT_SNAPSHOTS = """
    SELECT order_id, sequence, body, status_since, stuck_reported, digest FROM snapshots
    WHERE source = ? AND customer_id = ? AND order_id IN ({marks})"""
SELECT_PRIORS = """
    SELECT order_id, sequence, status_since, stuck_reported, fingerprint FROM snapshots
    WHERE source = ? AND customer_id = ? AND order_id IN ({marks})"""
SELECT_KNOWN = """
    SELECT order_id, digest, status, status_raw, status_since, stuck_reported FROM snapshots
    WHERE source = ? AND customer_id = ? AND digest IS NOT NULL"""
SET_DIGEST = "UPDATE snapshots SET digest = ? WHERE source = ? AND order_id = ?"
FILL_FINGERPRINT = """
    UPDATE snapshots SET fingerprint = ?
    WHERE source = ? AND order_id = ? AND fingerprint IS NULL"""
INSERT_EVENT = """
    INSERT INTO outbox (event_id, event_type, routing_key, body, created_at)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"""
SELECT_PENDING = """
    SELECT event_id, event_type, routing_key, body, created_at FROM outbox
    WHERE published_at IS NULL ORDER BY seq LIMIT ?"""
SELECT_PENDING_AFTER = """
    SELECT event_id, event_type, routing_key, body, created_at FROM outbox
    WHERE published_at IS NULL AND seq > (SELECT seq FROM outbox WHERE event_id = ?)
    ORDER BY seq LIMIT ?"""
MARK_PUBLISHED = """
    UPDATE outbox SET published_at = ? WHERE event_id IN ({marks}) AND published_at IS NULL"""
STATS = "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL"
PRUNE = "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?"
UPSERT_STATE = """
    INSERT INTO poll_state (
        source, customer_id, baseline_done, last_success_at, last_full_sync_at, next_due_at,
        in_flight
    )
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (source, customer_id) DO UPDATE SET baseline_done = excluded.baseline_done,
        last_success_at = excluded.last_success_at,
        last_full_sync_at = excluded.last_full_sync_at,
        next_due_at = excluded.next_due_at, in_flight = excluded.in_flight"""
_STATE_COLUMNS = "baseline_done, last_success_at, last_full_sync_at, next_due_at, in_flight"
SELECT_STATE = f"""
    SELECT {_STATE_COLUMNS} FROM poll_state WHERE source = ? AND customer_id = ?"""
SELECT_STATES = f"""
    SELECT customer_id, {_STATE_COLUMNS} FROM poll_state WHERE source = ?"""
SELECT_CUSTOMERS = """
    SELECT customer_id FROM customers WHERE source = ? AND listed = 1 ORDER BY customer_id"""
UNLIST_CUSTOMERS = "UPDATE customers SET listed = 0 WHERE source = ?"
LIST_CUSTOMER = """
    INSERT INTO customers (source, customer_id, listed) VALUES (?, ?, 1)
    ON CONFLICT (source, customer_id) DO UPDATE SET listed = 1"""
