-- The seed's BUDGET-001 table, unchanged: one row per agent per calendar
-- month ('YYYY-MM'), with the $30/month ($1/day) default cap.

-- +goose Up
CREATE TABLE agent_budget_tracking (
    agent_id UUID NOT NULL,
    month TEXT NOT NULL,
    total_spend_usd DECIMAL(10,2) DEFAULT 0,
    monthly_cap_usd DECIMAL(10,2) DEFAULT 30,
    last_updated_at TIMESTAMP NOT NULL DEFAULT NOW(),
    PRIMARY KEY (agent_id, month)
);

-- +goose Down
DROP TABLE agent_budget_tracking;
