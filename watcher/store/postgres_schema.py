"""The PostgreSQL store's tables, their numbered migrations and the statements it runs.

A database records the migrations applied to it in `schema_version`; opening one
(`postgres.PostgresStore.open`) runs the missing steps in one transaction under an advisory
lock, so replicas starting at the same moment migrate it once: the first takes the lock and
migrates, the others wait on it and then find nothing left to do. A step is never edited
once released: a change to the schema is a new step at the end.

    1  snapshots, outbox, poll_state, customers: the layout of the SQLite store's step 6,
       in PostgreSQL's own types (timestamptz, bytea, boolean, text[])
    2  leases: which replica holds each (source, customer), with the fencing token of its
       claim; replicas: each replica's heartbeat, which keeps all of its leases

A lease is current while its holder's `replicas` row has not expired: renewing a replica's
thousands of leases is one row's update. Expiry is judged by the database's clock
(`clock_timestamp()`), never a replica's, so clocks that disagree between machines cannot
make two replicas hold one lease.
"""

from __future__ import annotations

# Any constant of our own; it names the lock in pg_locks (classid 0x6f77, "ow").
MIGRATION_LOCK = 0x6F77_0001
# Held from an outbox insert to its commit, so outbox rows commit in `seq` order.
OUTBOX_LOCK = 0x6F77_0002

CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())"""
SELECT_VERSION = "SELECT coalesce(max(version), 0) FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version) VALUES ($1)"
VERSION_TABLE_EXISTS = "SELECT to_regclass('schema_version') IS NOT NULL"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE snapshots (
            source text NOT NULL, customer_id text NOT NULL, order_id text NOT NULL,
            sequence bigint NOT NULL, body bytea NOT NULL, updated_at timestamptz NOT NULL,
            status_since timestamptz, stuck_reported boolean NOT NULL DEFAULT false,
            fingerprint text, digest text, status text, status_raw text,
            PRIMARY KEY (source, order_id))""",
        "CREATE INDEX snapshots_by_customer ON snapshots (source, customer_id)",
        """CREATE TABLE outbox (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL UNIQUE, event_type text NOT NULL,
            routing_key text NOT NULL, body bytea NOT NULL, created_at timestamptz NOT NULL,
            published_at timestamptz)""",
        "CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL",
        """CREATE INDEX outbox_published ON outbox (published_at)
            WHERE published_at IS NOT NULL""",
        """CREATE TABLE poll_state (
            source text NOT NULL, customer_id text NOT NULL, baseline_done boolean NOT NULL,
            last_success_at timestamptz, last_full_sync_at timestamptz,
            next_due_at timestamptz, in_flight text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (source, customer_id))""",
        """CREATE TABLE customers (
            source text NOT NULL, customer_id text NOT NULL, listed boolean NOT NULL,
            PRIMARY KEY (source, customer_id))""",
    ),
    (
        """CREATE TABLE leases (
            source text NOT NULL, customer_id text NOT NULL, holder text,
            token bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (source, customer_id))""",
        "CREATE INDEX leases_by_holder ON leases (holder, source)",
        """CREATE TABLE replicas (
            replica text PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL)""",
    ),
)
VERSION = len(MIGRATIONS)

_STATE_COLUMNS = "baseline_done, last_success_at, last_full_sync_at, next_due_at, in_flight"

UPSERT_SNAPSHOT = """
    INSERT INTO snapshots (
        source, customer_id, order_id, sequence, body, updated_at, status_since, stuck_reported,
        fingerprint, digest, status, status_raw
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (source, order_id) DO UPDATE SET customer_id = excluded.customer_id,
        sequence = excluded.sequence, body = excluded.body, updated_at = excluded.updated_at,
        status_since = excluded.status_since, stuck_reported = excluded.stuck_reported,
        fingerprint = excluded.fingerprint, digest = excluded.digest,
        status = excluded.status, status_raw = excluded.status_raw"""
SELECT_SNAPSHOTS = """
    SELECT order_id, sequence, body, status_since, stuck_reported, digest FROM snapshots
    WHERE source = $1 AND customer_id = $2 AND order_id = any($3::text[])"""
# Each fetched order with its fingerprint: the body comes back only where the stored
# fingerprint differs (or is unknown), so an unchanged order's body is never read.
SELECT_PRIORS = """
    SELECT s.order_id, s.sequence, s.status_since, s.stuck_reported, s.digest,
        s.fingerprint IS NOT DISTINCT FROM f.fingerprint AS same,
        CASE WHEN s.fingerprint IS NOT DISTINCT FROM f.fingerprint THEN NULL ELSE s.body END
    FROM unnest($3::text[], $4::text[]) AS f (order_id, fingerprint)
    JOIN snapshots AS s ON s.source = $1 AND s.order_id = f.order_id
    WHERE s.customer_id = $2"""
SELECT_KNOWN = """
    SELECT order_id, digest, status, status_raw, status_since, stuck_reported FROM snapshots
    WHERE source = $1 AND customer_id = $2 AND digest IS NOT NULL"""
# A poll's start in one round trip: the poll state (NULLs before the first sync) on every
# row, beside each digest-bearing snapshot of the customer (NULLs when it has none).
SELECT_PRIOR = f"""
    SELECT {", ".join(f"ps.{column}" for column in _STATE_COLUMNS.split(", "))},
        k.order_id, k.digest, k.status, k.status_raw, k.status_since, k.stuck_reported
    FROM (VALUES (1)) AS one (n)
    LEFT JOIN poll_state AS ps ON ps.source = $1 AND ps.customer_id = $2
    LEFT JOIN snapshots AS k ON k.source = $1 AND k.customer_id = $2 AND k.digest IS NOT NULL"""
SET_DIGEST = "UPDATE snapshots SET digest = $1 WHERE source = $2 AND order_id = $3"
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock($1)"
INSERT_EVENT = """
    INSERT INTO outbox (event_id, event_type, routing_key, body, created_at)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING"""
SELECT_PENDING = """
    SELECT event_id, event_type, routing_key, body, created_at FROM outbox
    WHERE published_at IS NULL ORDER BY seq LIMIT $1"""
SELECT_PENDING_AFTER = """
    SELECT event_id, event_type, routing_key, body, created_at FROM outbox
    WHERE published_at IS NULL AND seq > (SELECT seq FROM outbox WHERE event_id = $1)
    ORDER BY seq LIMIT $2"""
MARK_PUBLISHED = """
    UPDATE outbox SET published_at = $1
    WHERE event_id = any($2::text[]) AND published_at IS NULL"""
STATS = "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL"
PRUNE = "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1"
UPSERT_STATE = """
    INSERT INTO poll_state (
        source, customer_id, baseline_done, last_success_at, last_full_sync_at, next_due_at,
        in_flight
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (source, customer_id) DO UPDATE SET baseline_done = excluded.baseline_done,
        last_success_at = excluded.last_success_at,
        last_full_sync_at = excluded.last_full_sync_at,
        next_due_at = excluded.next_due_at, in_flight = excluded.in_flight"""
SELECT_STATE = f"""
    SELECT {_STATE_COLUMNS} FROM poll_state WHERE source = $1 AND customer_id = $2"""
SELECT_STATES = f"""
    SELECT customer_id, {_STATE_COLUMNS} FROM poll_state WHERE source = $1"""
SELECT_CUSTOMERS = """
    SELECT customer_id FROM customers WHERE source = $1 AND listed
    ORDER BY customer_id COLLATE "C"
"""
UNLIST_CUSTOMERS = "UPDATE customers SET listed = false WHERE source = $1"
LIST_CUSTOMER = """
    INSERT INTO customers (source, customer_id, listed) VALUES ($1, $2, true)
    ON CONFLICT (source, customer_id) DO UPDATE SET listed = true"""

# --- leases (`ports.Leases`) -------------------------------------------------------------

# The replica's row before this beat, and after: whether it was still alive when renewed.
HEARTBEAT = """
    WITH before AS (SELECT expires_at FROM replicas WHERE replica = $1)
    INSERT INTO replicas (replica, expires_at)
    VALUES ($1, clock_timestamp() + make_interval(secs => $2))
    ON CONFLICT (replica) DO UPDATE SET expires_at = excluded.expires_at
    RETURNING coalesce((SELECT expires_at > clock_timestamp() FROM before), false)"""
FORGET_REPLICAS = """
    DELETE FROM replicas WHERE expires_at < clock_timestamp() - interval '1 day'"""
LEAVE = "DELETE FROM replicas WHERE replica = $1"
LIVE_REPLICAS = "SELECT count(*) FROM replicas WHERE expires_at > clock_timestamp()"
ADD_LEASES = """
    INSERT INTO leases (source, customer_id) SELECT $1, unnest($2::text[])
    ON CONFLICT (source, customer_id) DO NOTHING"""
# A lease is free when it has no holder or its holder is not alive. Rows another replica is
# claiming at this moment are skipped, not waited for. The holder's liveness is a correlated
# subquery, not a join: a row claimed by another since this statement's snapshot is checked
# again as it is locked, and only a subquery is evaluated again for the row's new holder (a
# joined row would stay the one of the snapshot, and the lease be claimed twice).
CLAIM = """
    UPDATE leases AS l SET holder = $2, token = l.token + 1
    FROM (
        SELECT f.customer_id FROM leases AS f
        WHERE f.source = $1 AND f.customer_id = any($3::text[])
            AND NOT EXISTS (
                SELECT 1 FROM replicas AS r
                WHERE r.replica = f.holder AND r.expires_at > clock_timestamp())
        ORDER BY f.customer_id LIMIT $4 FOR UPDATE SKIP LOCKED
    ) AS free
    WHERE l.source = $1 AND l.customer_id = free.customer_id
    RETURNING l.customer_id, l.token"""
STILL_HELD = """
    SELECT l.customer_id FROM leases AS l
    JOIN unnest($3::text[], $4::bigint[]) AS h (customer_id, token)
        ON l.customer_id = h.customer_id AND l.token = h.token
    WHERE l.source = $1 AND l.holder = $2"""
RELEASE = """
    UPDATE leases AS l SET holder = NULL
    FROM unnest($3::text[], $4::bigint[]) AS h (customer_id, token)
    WHERE l.source = $1 AND l.customer_id = h.customer_id AND l.holder = $2
        AND l.token = h.token"""
_CURRENT = """
    FROM leases AS l JOIN replicas AS r ON r.replica = l.holder
    WHERE l.source = $1 AND l.customer_id = {lease} AND l.holder = {holder}
        AND l.token = {token} AND r.expires_at > clock_timestamp()"""
# Inside a sync's transaction: the lease row is share-locked to the commit, so no claim can
# take it over meanwhile (a claim skips locked rows), even if its holder's heartbeat lapses.
CHECK_FENCE = "SELECT 1" + _CURRENT.format(lease="$2", holder="$3", token="$4") + " FOR SHARE OF l"
UPSERT_STATE_FENCED = f"""
    INSERT INTO poll_state (
        source, customer_id, baseline_done, last_success_at, last_full_sync_at, next_due_at,
        in_flight
    )
    SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (
        SELECT 1 {_CURRENT.format(lease="$10", holder="$8", token="$9")})
    ON CONFLICT (source, customer_id) DO UPDATE SET baseline_done = excluded.baseline_done,
        last_success_at = excluded.last_success_at,
        last_full_sync_at = excluded.last_full_sync_at,
        next_due_at = excluded.next_due_at, in_flight = excluded.in_flight"""
