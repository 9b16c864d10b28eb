-- gatewayd LISTENs on gateway_routes_changed and rebuilds its snapshot from a
-- full read, so the payload only says which table moved and how (for logs);
-- it never carries row data. Statement-level triggers send one notification
-- per statement rather than one per row, and PostgreSQL folds identical
-- payloads within a transaction and delivers them only at COMMIT, so a
-- migration touching 10,000 routes wakes the listener once, after the data is
-- visible.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION gateway_routes_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gateway_routes_changed', TG_TABLE_NAME || ':' || TG_OP);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER gateway_routes_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gateway_routes
    FOR EACH STATEMENT EXECUTE FUNCTION gateway_routes_notify_change();

CREATE TRIGGER gateway_route_settings_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gateway_route_settings
    FOR EACH STATEMENT EXECUTE FUNCTION gateway_routes_notify_change();

-- +goose Down
DROP TRIGGER gateway_route_settings_notify ON gateway_route_settings;
DROP TRIGGER gateway_routes_notify ON gateway_routes;
DROP FUNCTION gateway_routes_notify_change();
