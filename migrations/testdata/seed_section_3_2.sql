   INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack, requires_governor_role)
   VALUES
   (1, '/api/agents', 'GET', 'cp', 'https://cp.demo.waooaw.com/api/agents', '["auth", "policy", "audit"]', false),
   (1, '/api/agents/{id}/demo', 'POST', 'cp', 'https://cp.demo.waooaw.com/api/agents/{id}/demo', '["auth", "policy", "budget", "audit"]', false),
   (1, '/api/v1/agents', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/agents', '["auth", "policy", "audit"]', true),  -- Governor only
   (1, '/api/v1/genesis/skills/{id}/certify', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/genesis/skills/{id}/certify', '["auth", "rbac", "audit"]', true),
   (1, '/api/admin/agents/create', 'POST', 'pp', 'https://pp.demo.waooaw.com/api/agents/create', '["auth", "rbac", "policy", "audit"]', false),
   -- ... 8 more routes
   ;
