-- Initial routing table (13 routes for Demo environment)

INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack, requires_governor_role, trial_mode_sandbox_url, rate_limit_per_hour, requires_opa_policy)
VALUES
-- CP Routes (Customer Portal)
(1, '/api/agents', 'GET', 'cp', 'https://cp.demo.waooaw.com/api/agents', '["auth", "policy", "audit"]', false, NULL, 1000, 'rbac/allow'),
(1, '/api/agents/{id}', 'GET', 'cp', 'https://cp.demo.waooaw.com/api/agents/{id}', '["auth", "audit"]', false, NULL, 1000, NULL),
(1, '/api/agents/{id}/demo', 'POST', 'cp', 'https://cp.demo.waooaw.com/api/agents/{id}/demo', '["auth", "policy", "audit"]', false, NULL, 100, 'rbac/allow'),
(1, '/api/agents/{id}/execute', 'POST', 'cp', 'https://cp.demo.waooaw.com/api/agents/{id}/execute', '["auth", "policy", "budget", "audit"]', false, 'https://sandbox.demo.waooaw.com/api/agents/{id}/execute', 500, 'trial/sandbox_route'),

-- PP Routes (Platform Portal)
(1, '/api/admin/agents/create', 'POST', 'pp', 'https://pp.demo.waooaw.com/api/agents/create', '["auth", "rbac", "policy", "audit"]', false, NULL, 10000, 'rbac/allow'),
(1, '/api/admin/customers', 'GET', 'pp', 'https://pp.demo.waooaw.com/api/customers', '["auth", "rbac", "audit"]', false, NULL, 10000, 'rbac/allow'),
(1, '/api/admin/billing/credit-proposals/approve', 'POST', 'pp', 'https://pp.demo.waooaw.com/api/billing/credit-proposals/approve', '["auth", "rbac", "audit"]', false, NULL, 1000, 'rbac/allow'),
(1, '/api/governor/approve', 'POST', 'pp', 'https://pp.demo.waooaw.com/api/governor/approve', '["auth", "audit"]', true, NULL, 10000, NULL),  -- Governor only

-- Plant Routes (Data Layer)
(1, '/api/v1/agents', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/agents', '["auth", "policy", "audit"]', true, NULL, 1000, NULL),  -- Governor only
(1, '/api/v1/agents', 'GET', 'plant', 'https://plant.demo.waooaw.com/api/v1/agents', '["auth", "audit"]', false, NULL, 1000, NULL),
(1, '/api/v1/genesis/skills/{id}/certify', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/genesis/skills/{id}/certify', '["auth", "rbac", "audit"]', true, NULL, 100, 'rbac/allow'),  -- Genesis certification
(1, '/api/v1/audit/run', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/audit/run', '["auth", "rbac", "audit"]', false, NULL, 100, 'rbac/allow'),  -- Expensive operation
(1, '/api/v1/audit/export', 'GET', 'plant', 'https://plant.demo.waooaw.com/api/v1/audit/export', '["auth", "rbac", "audit"]', false, NULL, 100, 'rbac/allow');
