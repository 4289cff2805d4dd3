"""least_privilege_and_login_throttle: the app role cannot read hashes or rewrite history.

Revision ID: 0009
Revises: 0008

Logins without the hash. ``users.password_hash`` is read only by two
``SECURITY DEFINER`` functions owned by the role that runs migrations
(``search_path`` pinned, ``EXECUTE`` revoked from PUBLIC; ``shopdb setup
--app-role`` grants it to the app role):

* ``shopdb_login_begin(login, settings)`` counts the attempt and answers
  with what computing a candidate needs: the user's stored argon2 hash
  without its digest (``$argon2id$v=19$m=...,t=...,p=...$<salt>``) and the
  digest's length; for an unknown login, ``settings`` (the caller's current
  argon2 parameters) with a salt derived from the login by HMAC-SHA256 under
  a key only the owner can read (``auth_keys``), so a login answers the same
  every time, known or not. Past ``LOGIN_ATTEMPTS`` attempts within
  ``LOGIN_WINDOW`` seconds it answers only with the seconds left
  (``retry_after``) and the caller runs no argon2 at all.
* ``shopdb_login_finish(login, digest, rehashed)`` takes the candidate digest,
  compares it with the stored one in the database and returns the user's
  public columns, or no row. It consumes one attempt counted by
  ``begin`` (without one it checks nothing), so a caller holding the app
  role's password cannot guess faster than the web can. A success resets the
  count and, when ``rehashed`` is given (the caller saw weak parameters),
  stores that fresh hash in the same statement.

The throttle (``login_attempts``) keeps one row per login tried in the
window, keyed by an HMAC of the lower-cased login (the logins typed, often a
password typed in the wrong box, are never stored); each admitted ``begin`` prunes up
to two rows whose window has passed. The count is one upsert: exact under
any concurrency; past the limit it writes nothing.

History the database keeps, whoever asks (triggers; the owner can drop one
for a deliberate repair):

* an order changes only its ``status`` (and ``updated_at``), and only
  placed -> paid -> shipped or placed|paid -> cancelled;
* ``inventory_adjustments`` is append-only (its rows go only with their
  product, through the foreign key's cascade);
* a closed cart stays closed (``closed_at`` never goes back to NULL).

Online: two new tables (no locks on busy ones), functions (no locks), three
triggers (brief locks, retried in short attempts).
"""

from __future__ import annotations

from shopdb import online_ddl

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: Failed logins admitted per login within the window (``shopdb.limits``, frozen here).
LOGIN_ATTEMPTS = 10
#: The window, in seconds (``shopdb.limits.LOGIN_WINDOW``, frozen here).
LOGIN_WINDOW = 900

AUTH_KEYS = """
CREATE TABLE IF NOT EXISTS auth_keys (
    id BOOLEAN NOT NULL DEFAULT true CONSTRAINT pk_auth_keys PRIMARY KEY,
    inner_pad BYTEA NOT NULL,
    outer_pad BYTEA NOT NULL,
    CONSTRAINT ck_auth_keys_one_row CHECK (id),
    CONSTRAINT ck_auth_keys_pads CHECK (length(inner_pad) = 64 AND length(outer_pad) = 64)
)
"""
# HMAC-SHA256's padded keys (RFC 2104), from 244 random bits (two v4 UUIDs, which
# PostgreSQL 13+ draws from its strong random source) padded to SHA-256's 64-byte block.
FILL_AUTH_KEYS = """
INSERT INTO auth_keys (id, inner_pad, outer_pad)
SELECT true,
       decode(string_agg(lpad(to_hex(get_byte(k.key, i) # 54), 2, '0'), '' ORDER BY i), 'hex'),
       decode(string_agg(lpad(to_hex(get_byte(k.key, i) # 92), 2, '0'), '' ORDER BY i), 'hex')
FROM (SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
                    || repeat('0', 64), 'hex') AS key) k,
     generate_series(0, 63) i
GROUP BY k.key
ON CONFLICT (id) DO NOTHING
"""
LOGIN_ATTEMPTS_TABLE = """
CREATE TABLE IF NOT EXISTS login_attempts (
    login_key BYTEA NOT NULL CONSTRAINT pk_login_attempts PRIMARY KEY,
    attempts INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    CONSTRAINT ck_login_attempts_counts CHECK (attempts >= 0 AND pending >= 0)
)
"""
LOCK_OUT_PUBLIC = "REVOKE ALL ON auth_keys, login_attempts FROM PUBLIC"

LOGIN_KEY = """
CREATE OR REPLACE FUNCTION shopdb_login_key(purpose TEXT, login TEXT) RETURNS BYTEA
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT sha256(k.outer_pad || sha256(k.inner_pad
                  || convert_to(purpose || ':' || lower(login), 'UTF8')))
    FROM auth_keys k
$$
"""
LOGIN_BEGIN = f"""
CREATE OR REPLACE FUNCTION shopdb_login_begin(login TEXT, settings TEXT)
RETURNS TABLE (hash_settings TEXT, digest_length INTEGER, retry_after INTEGER)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    window_length CONSTANT INTERVAL := make_interval(secs => {LOGIN_WINDOW});
    throttle_key CONSTANT BYTEA := shopdb_login_key('throttle', login);
    tried INTEGER;
    started TIMESTAMPTZ;
    stored TEXT;
BEGIN
    -- One upsert counts the attempt: its row lock makes the count exact however
    -- many race. Past the limit it writes nothing (the WHERE), so a flood of
    -- refused attempts leaves no dead rows behind; it still locks the row.
    INSERT INTO login_attempts AS a (login_key, attempts, pending, window_start)
    VALUES (throttle_key, 1, 1, now())
    ON CONFLICT (login_key) DO UPDATE SET
        attempts = CASE WHEN a.window_start <= now() - window_length THEN 1
                        ELSE a.attempts + 1 END,
        pending = CASE WHEN a.window_start <= now() - window_length THEN 1
                       ELSE a.pending + 1 END,
        window_start = CASE WHEN a.window_start <= now() - window_length THEN now()
                            ELSE a.window_start END
    WHERE a.window_start <= now() - window_length OR a.attempts < {LOGIN_ATTEMPTS}
    RETURNING a.attempts INTO tried;
    IF tried IS NULL THEN
        SELECT a.window_start INTO started FROM login_attempts a
        WHERE a.login_key = throttle_key;
        RETURN QUERY SELECT NULL::TEXT, NULL::INTEGER, greatest(1, ceil(extract(epoch FROM
            coalesce(started, now()) + window_length - now())))::INTEGER;
        RETURN;
    END IF;
    -- Bounded: rows whose window has passed go, two for each attempt admitted. After
    -- the upsert, and SKIP LOCKED: no attempt ever waits here, so none can deadlock.
    DELETE FROM login_attempts WHERE login_key IN (
        SELECT a.login_key FROM login_attempts a
        WHERE a.window_start < now() - window_length
        ORDER BY a.window_start LIMIT 2 FOR UPDATE SKIP LOCKED);
    IF strpos(login, '@') > 0 THEN
        SELECT u.password_hash INTO stored FROM users u WHERE lower(u.email) = lower(login);
    ELSE
        SELECT u.password_hash INTO stored FROM users u WHERE lower(u.username) = lower(login);
    END IF;
    IF stored ~ '^\\$argon2(id|i|d)\\$[^$]+(\\$[^$]+)*\\$[A-Za-z0-9+/]+$' THEN
        RETURN QUERY SELECT regexp_replace(stored, '\\$[^$]*$', ''),
            (length(substring(stored FROM '[^$]*$')) * 3 / 4)::INTEGER, NULL::INTEGER;
    ELSE
        -- No such login (or no argon2 hash): a salt of its own, the same every time.
        RETURN QUERY SELECT settings || '$' || rtrim(encode(substr(
                shopdb_login_key('salt', login), 1, 16), 'base64'), '='),
            32, NULL::INTEGER;
    END IF;
END
$$
"""
LOGIN_FINISH = """
CREATE OR REPLACE FUNCTION shopdb_login_finish(login TEXT, digest TEXT, rehashed TEXT)
RETURNS TABLE (user_id INTEGER, user_name VARCHAR, user_email VARCHAR, user_created TIMESTAMP)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    throttle_key CONSTANT BYTEA := shopdb_login_key('throttle', login);
    found_id INTEGER;
BEGIN
    -- Each check consumes an attempt that shopdb_login_begin counted.
    UPDATE login_attempts SET pending = pending - 1
    WHERE login_key = throttle_key AND pending > 0;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF strpos(login, '@') > 0 THEN
        SELECT u.id INTO found_id FROM users u WHERE lower(u.email) = lower(login)
            AND u.password_hash = regexp_replace(u.password_hash, '[^$]*$', '') || digest;
    ELSE
        SELECT u.id INTO found_id FROM users u WHERE lower(u.username) = lower(login)
            AND u.password_hash = regexp_replace(u.password_hash, '[^$]*$', '') || digest;
    END IF;
    IF found_id IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM login_attempts WHERE login_key = throttle_key;
    IF rehashed ~ '^\\$argon2id\\$' THEN
        -- Compare-and-set: a password changed meanwhile wins.
        UPDATE users u SET password_hash = rehashed WHERE u.id = found_id
            AND u.password_hash = regexp_replace(u.password_hash, '[^$]*$', '') || digest;
    END IF;
    RETURN QUERY SELECT u.id, u.username, u.email, u.created_at FROM users u
        WHERE u.id = found_id;
END
$$
"""
FUNCTIONS = [
    "shopdb_login_key(TEXT, TEXT)",
    "shopdb_login_begin(TEXT, TEXT)",
    "shopdb_login_finish(TEXT, TEXT, TEXT)",
]

# -- history the database keeps ------------------------------------------------

ORDERS_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_orders_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Every column but the status and its time is the sale as it was made.
    IF to_jsonb(NEW) - 'status' - 'updated_at' <> to_jsonb(OLD) - 'status' - 'updated_at' THEN
        RAISE EXCEPTION USING MESSAGE = 'order ' || OLD.id || ': only its status can change',
            ERRCODE = 'check_violation', CONSTRAINT = 'ck_orders_sale_fixed', TABLE = 'orders';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'placed' AND NEW.status IN ('paid', 'cancelled'))
        OR (OLD.status = 'paid' AND NEW.status IN ('shipped', 'cancelled'))
    ) THEN
        RAISE EXCEPTION USING
            MESSAGE = 'order ' || OLD.id || ' cannot go from ' || OLD.status || ' to '
                      || coalesce(NEW.status, 'NULL'),
            ERRCODE = 'check_violation', CONSTRAINT = 'ck_orders_status_transition',
            TABLE = 'orders';
    END IF;
    RETURN NEW;
END
$$
"""
ORDERS_TRIGGER = (
    "CREATE OR REPLACE TRIGGER orders_guard BEFORE UPDATE ON orders "
    "FOR EACH ROW EXECUTE FUNCTION shopdb_orders_guard()"
)
ADJUSTMENTS_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_inventory_adjustments_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A deleted product's adjustments go with it (the foreign key's cascade);
    -- while the product exists, its history stays as written.
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM products WHERE id = OLD.product_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'inventory adjustments are append-only',
        ERRCODE = 'check_violation', CONSTRAINT = 'ck_inventory_adjustments_append_only',
        TABLE = 'inventory_adjustments';
END
$$
"""
ADJUSTMENTS_TRIGGER = (
    "CREATE OR REPLACE TRIGGER inventory_adjustments_append_only "
    "BEFORE UPDATE OR DELETE ON inventory_adjustments "
    "FOR EACH ROW EXECUTE FUNCTION shopdb_inventory_adjustments_append_only()"
)
CARTS_FUNCTION = """
CREATE OR REPLACE FUNCTION shopdb_carts_stay_closed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'cart ' || OLD.id || ' is closed for good',
        ERRCODE = 'check_violation', CONSTRAINT = 'ck_carts_closed_for_good', TABLE = 'carts';
END
$$
"""
CARTS_TRIGGER = (
    "CREATE OR REPLACE TRIGGER carts_stay_closed BEFORE UPDATE ON carts FOR EACH ROW "
    "WHEN (OLD.closed_at IS NOT NULL AND NEW.closed_at IS DISTINCT FROM OLD.closed_at) "
    "EXECUTE FUNCTION shopdb_carts_stay_closed()"
)
TRIGGERS = [
    ("orders_guard", "orders", "shopdb_orders_guard", ORDERS_FUNCTION, ORDERS_TRIGGER),
    (
        "inventory_adjustments_append_only",
        "inventory_adjustments",
        "shopdb_inventory_adjustments_append_only",
        ADJUSTMENTS_FUNCTION,
        ADJUSTMENTS_TRIGGER,
    ),
    ("carts_stay_closed", "carts", "shopdb_carts_stay_closed", CARTS_FUNCTION, CARTS_TRIGGER),
]


def upgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        ddl.unblocking(AUTH_KEYS)
        ddl.unblocking(FILL_AUTH_KEYS)
        ddl.unblocking(LOGIN_ATTEMPTS_TABLE)
        ddl.create_index("ix_login_attempts_window_start", "login_attempts", ["window_start"])
        ddl.unblocking(LOCK_OUT_PUBLIC)
        for function in (LOGIN_KEY, LOGIN_BEGIN, LOGIN_FINISH):
            ddl.unblocking(function)
        for signature in FUNCTIONS:
            ddl.unblocking(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        for _, _, _, function, trigger in TRIGGERS:
            ddl.unblocking(function)
            ddl.brief(trigger)


def downgrade() -> None:
    with online_ddl.outside_transaction() as ddl:
        for name, table, function, _, _ in reversed(TRIGGERS):
            ddl.brief(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            ddl.unblocking(f"DROP FUNCTION IF EXISTS {function}()")
        for signature in reversed(FUNCTIONS):
            ddl.unblocking(f"DROP FUNCTION IF EXISTS {signature}")
        ddl.drop_index("ix_login_attempts_window_start")
        ddl.unblocking("DROP TABLE IF EXISTS login_attempts")
        ddl.unblocking("DROP TABLE IF EXISTS auth_keys")
