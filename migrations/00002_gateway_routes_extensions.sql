-- Columns the gateway needs beyond the seed. Every one has a default so that
-- INSERTs written against the seed's column list keep working.
--
-- There is deliberately no unique index on (route_version, source_path,
-- http_method): two rows that collide must both reach the translator, which
-- rejects them with a reason the platform team can see, instead of the second
-- INSERT failing with a bare constraint error.

-- +goose Up
ALTER TABLE gateway_routes
    -- resource:action, when the permission can't be derived from path and method.
    ADD COLUMN permission TEXT DEFAULT NULL,
    -- Admin force actions must carry X-Action-Reason for the audit trail.
    ADD COLUMN requires_reason BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN websocket BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 15000,
    ADD COLUMN updated_at TIMESTAMP NOT NULL DEFAULT NOW();

-- A column default only covers INSERT; without the trigger an UPDATE done by
-- hand in psql would leave updated_at lying about when the row last changed.
-- +goose StatementBegin
CREATE FUNCTION gateway_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER gateway_routes_touch_updated_at
    BEFORE UPDATE ON gateway_routes
    FOR EACH ROW EXECUTE FUNCTION gateway_touch_updated_at();

-- +goose Down
DROP TRIGGER gateway_routes_touch_updated_at ON gateway_routes;
DROP FUNCTION gateway_touch_updated_at();
ALTER TABLE gateway_routes
    DROP COLUMN updated_at,
    DROP COLUMN timeout_ms,
    DROP COLUMN websocket,
    DROP COLUMN requires_reason,
    DROP COLUMN permission;
