-- The routing table exactly as the seed's ROUTING-001 defines it, so that the
-- seed's own INSERT statements (§3.2, §9) run against it unchanged. Anything we
-- add lives in later migrations, which keeps this file comparable to the seed.

-- +goose Up
CREATE TABLE gateway_routes (
    id SERIAL PRIMARY KEY,
    route_version INTEGER NOT NULL,
    source_path TEXT NOT NULL,
    http_method TEXT NOT NULL,
    target_backend TEXT NOT NULL,
    target_service_url TEXT NOT NULL,
    middleware_stack JSONB DEFAULT '[]',
    requires_governor_role BOOLEAN DEFAULT false,
    trial_mode_sandbox_url TEXT,
    rate_limit_per_hour INTEGER DEFAULT 1000,
    requires_opa_policy TEXT,
    requires_mobile_device_token BOOLEAN DEFAULT false,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT NOW()
);

CREATE INDEX idx_gateway_routes_active ON gateway_routes (is_active, route_version);
CREATE INDEX idx_gateway_routes_path_method ON gateway_routes (source_path, http_method);

-- +goose Down
DROP TABLE gateway_routes;
