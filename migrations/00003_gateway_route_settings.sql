-- Which blue/green route_version serves is data, not configuration: switching
-- (and rolling back) is one UPDATE of this row, atomic with any route edits
-- made in the same transaction. The boolean primary key constrained to true
-- makes a second row impossible, so readers never have to pick one.

-- +goose Up
CREATE TABLE gateway_route_settings (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    active_version INTEGER NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO gateway_route_settings (id, active_version) VALUES (true, 1);

CREATE TRIGGER gateway_route_settings_touch_updated_at
    BEFORE UPDATE ON gateway_route_settings
    FOR EACH ROW EXECUTE FUNCTION gateway_touch_updated_at();

-- +goose Down
DROP TABLE gateway_route_settings;
