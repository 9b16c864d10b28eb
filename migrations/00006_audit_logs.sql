-- The audit trail (AUDIT-001..004). Rows are written once by gatewayd and
-- hash-chained (prev_hash -> hash) by the writer, so any later edit is
-- detectable; the append-only trigger below makes the easy edits impossible.
--
-- Monthly range partitions make the 7-year retention (AUDIT-004) a matter of
-- dropping whole tables, which is instant and never needs a DELETE. The
-- DEFAULT partition exists so that an insert can never fail for want of a
-- partition (clock skew, a maintenance job that didn't run): losing an audit
-- record is worse than one landing in the wrong table for a while.
--
-- Month boundaries are UTC midnights regardless of the session's TimeZone, so
-- every replica and every maintenance run agrees on which partition a row
-- belongs to.

-- +goose Up
CREATE TABLE audit_logs (
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    correlation_id TEXT NOT NULL,
    causation_id TEXT NOT NULL,
    user_id TEXT,
    agent_id TEXT,
    customer_id TEXT,
    route_id INTEGER,
    route_version INTEGER,
    action TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    error_code TEXT,
    status_code INTEGER,
    duration_ms DOUBLE PRECISION,
    trial_mode BOOLEAN NOT NULL DEFAULT false,
    sandbox_routed BOOLEAN NOT NULL DEFAULT false,
    reason TEXT,
    details JSONB NOT NULL DEFAULT '{}',
    prev_hash BYTEA,
    hash BYTEA,
    -- The partition key must be part of any unique constraint on a
    -- partitioned table, hence created_at first.
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);

CREATE INDEX audit_logs_correlation_id_idx ON audit_logs (correlation_id);

CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;

-- Creates the monthly partitions audit_logs_yYYYYmMM for `months` months
-- starting with the month containing from_month, skipping those that exist,
-- and returns the names it created. Safe to call from every replica on every
-- start and from a periodic job.
-- +goose StatementBegin
CREATE FUNCTION audit_logs_ensure_partitions(from_month date, months int)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    month_start date;
    lo timestamptz;
    hi timestamptz;
    part text;
    cols text;
    stranded boolean;
BEGIN
    -- Two replicas starting together would otherwise race on CREATE TABLE.
    PERFORM pg_advisory_xact_lock(hashtext('audit_logs_partitions'));

    FOR i IN 0 .. months - 1 LOOP
        month_start := (date_trunc('month', from_month) + make_interval(months => i))::date;
        part := format('audit_logs_y%sm%s', to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;

        lo := month_start::timestamp AT TIME ZONE 'UTC';
        hi := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';

        -- PostgreSQL refuses to create a partition while the DEFAULT
        -- partition holds rows of its range. Audit rows may be neither
        -- updated nor deleted, so instead of moving them out of the default
        -- we retire the whole default table: detach it, create a fresh
        -- default and the new month, route every old row again through the
        -- parent, and drop the emptied-out copy (DROP fires no DELETE
        -- trigger). Ids and hashes are carried over unchanged, so the chain
        -- stays verifiable.
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM audit_logs_default WHERE created_at >= $1 AND created_at < $2)'
            INTO stranded USING lo, hi;

        IF stranded THEN
            SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
              FROM pg_attribute
             WHERE attrelid = 'audit_logs'::regclass AND attnum > 0 AND NOT attisdropped;

            ALTER TABLE audit_logs DETACH PARTITION audit_logs_default;
            ALTER TABLE audit_logs_default RENAME TO audit_logs_default_retired;
            CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_logs FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            EXECUTE format('INSERT INTO audit_logs (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM audit_logs_default_retired', cols, cols);
            DROP TABLE audit_logs_default_retired;
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_logs FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        END IF;

        RETURN NEXT part;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- Detaches and drops every monthly partition whose whole month ended before
-- now() - retain, returning the names dropped. The DEFAULT partition is never
-- touched: its rows have no month of their own until ensure_partitions gives
-- them one.
-- +goose StatementBegin
CREATE FUNCTION audit_logs_drop_expired(retain interval DEFAULT '7 years')
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - retain;
    part text;
    month_start date;
BEGIN
    -- A retention typed in the wrong unit ('7 days') would destroy the
    -- trail irrecoverably, and nothing legitimate keeps audit for less.
    IF retain < interval '1 year' THEN
        RAISE EXCEPTION 'audit_logs_drop_expired: retention % is shorter than one year', retain
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('audit_logs_partitions'));

    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'audit_logs'::regclass
           AND c.relname ~ '^audit_logs_y[0-9]{4}m[0-9]{2}$'
         ORDER BY c.relname
    LOOP
        month_start := to_date(substr(part, 13, 4) || substr(part, 18, 2), 'YYYYMM');
        CONTINUE WHEN (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC' > cutoff;

        EXECUTE format('ALTER TABLE audit_logs DETACH PARTITION %I', part);
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_logs_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Expired months are removed whole by audit_logs_drop_expired().';
END;
$$;
-- +goose StatementEnd

-- Row-level triggers on a partitioned table are cloned onto every partition,
-- present and future, so a statement aimed at a partition directly is
-- rejected too.
CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_reject_change();

CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_reject_change();

SELECT audit_logs_ensure_partitions((now() AT TIME ZONE 'UTC')::date, 3);

-- +goose Down
DROP TABLE audit_logs;
DROP FUNCTION audit_logs_reject_change();
DROP FUNCTION audit_logs_drop_expired(interval);
DROP FUNCTION audit_logs_ensure_partitions(date, int);
