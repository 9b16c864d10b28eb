package authz

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/translate"
)

// routeInfo is the route Envoy matched, as the translator described it in
// the per-route context_extensions.
type routeInfo struct {
	ID                  int64
	Version             int
	Method              string
	Template            model.Template
	Backend             string
	MiddlewareStack     []string
	RequiresGovernor    bool
	OPAPolicy           string
	RateLimitPerHour    int
	RequiresDeviceToken bool
	Permission          string
	RequiresReason      bool
	Websocket           bool
	HasSandbox          bool
}

// routeCache parses each distinct context_extensions set once. The map is
// small (one entry per route and version) and grows only on config change.
type routeCache struct {
	m sync.Map // route_key -> *routeInfo
	n atomic.Int64
}

const maxRouteCacheEntries = 100_000

func (c *routeCache) get(ext map[string]string) (*routeInfo, error) {
	id := ext[translate.CtxRouteID]
	if id == "" {
		return nil, fmt.Errorf("no route_id in context_extensions: is the route missing its ext_authz check_settings?")
	}
	key := ext[translate.CtxRouteKey]
	if key == "" {
		return nil, fmt.Errorf("route %s: no route_key in context_extensions", id)
	}
	if v, ok := c.m.Load(key); ok {
		return v.(*routeInfo), nil
	}
	ri, err := parseRoute(ext)
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > maxRouteCacheEntries {
		// Only a long run of config changes gets here; start afresh.
		c.m.Clear()
		c.n.Store(0)
	}
	c.m.Store(key, ri)
	return ri, nil
}

func parseRoute(ext map[string]string) (*routeInfo, error) {
	ri := &routeInfo{
		Method:     ext[translate.CtxMethod],
		Backend:    ext[translate.CtxTargetBackend],
		OPAPolicy:  ext[translate.CtxRequiresOPAPolicy],
		Permission: ext[translate.CtxPermission],
	}
	var err error
	if ri.ID, err = strconv.ParseInt(ext[translate.CtxRouteID], 10, 64); err != nil {
		return nil, fmt.Errorf("route_id: %w", err)
	}
	if ri.Version, err = strconv.Atoi(ext[translate.CtxRouteVersion]); err != nil {
		return nil, fmt.Errorf("route %d: route_version: %w", ri.ID, err)
	}
	if ri.Template, err = model.ParseTemplate(ext[translate.CtxPathTemplate]); err != nil {
		return nil, fmt.Errorf("route %d: path_template: %w", ri.ID, err)
	}
	if s := ext[translate.CtxRateLimitPerHour]; s != "" {
		if ri.RateLimitPerHour, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("route %d: rate_limit_per_hour: %w", ri.ID, err)
		}
	}
	if s := ext[translate.CtxMiddlewareStack]; s != "" {
		if err := json.Unmarshal([]byte(s), &ri.MiddlewareStack); err != nil {
			return nil, fmt.Errorf("route %d: middleware_stack: %w", ri.ID, err)
		}
	}
	if ri.MiddlewareStack == nil {
		ri.MiddlewareStack = []string{}
	}
	ri.RequiresGovernor = ext[translate.CtxRequiresGovernor] == "true"
	ri.RequiresDeviceToken = ext[translate.CtxRequiresDeviceToken] == "true"
	ri.RequiresReason = ext[translate.CtxRequiresReason] == "true"
	ri.Websocket = ext[translate.CtxWebsocket] == "true"
	ri.HasSandbox = ext[translate.CtxHasSandbox] == "true"
	return ri, nil
}
