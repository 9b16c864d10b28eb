// Package xds is gatewayd's control plane: it loads route rows from a Source,
// validates them (model), translates them to Envoy resources (translate) and
// serves the result to every Envoy over ADS. A bad row drops itself; a system
// fault publishes nothing, so the last good snapshot keeps serving.
package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waooaw/policygateway/xds/translate"
)

// NewSnapshot versions the resources by a SHA-256 of their deterministic
// encoding: identical content gives an identical version on every replica,
// and an unchanged table never causes a push.
func NewSnapshot(res *translate.Resources) (*cachev3.Snapshot, error) {
	// Every type is present even when empty, so the snapshot always has a
	// version for each (an empty table still publishes, and Envoy is told
	// that there are no clusters rather than nothing).
	byType := map[resourcev3.Type][]types.Resource{
		resourcev3.ClusterType: {}, resourcev3.RouteType: {}, resourcev3.ListenerType: {},
	}
	for _, c := range res.Clusters {
		byType[resourcev3.ClusterType] = append(byType[resourcev3.ClusterType], c)
	}
	for _, r := range res.Routes {
		byType[resourcev3.RouteType] = append(byType[resourcev3.RouteType], r)
	}
	for _, l := range res.Listeners {
		byType[resourcev3.ListenerType] = append(byType[resourcev3.ListenerType], l)
	}
	version, err := contentHash(byType)
	if err != nil {
		return nil, err
	}
	snap, err := cachev3.NewSnapshot(version, byType)
	if err != nil {
		return nil, fmt.Errorf("new snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, nil
}

func contentHash(byType map[resourcev3.Type][]types.Resource) (string, error) {
	typeURLs := make([]string, 0, len(byType))
	for t := range byType {
		typeURLs = append(typeURLs, t)
	}
	sort.Strings(typeURLs)
	h := sha256.New()
	for _, t := range typeURLs {
		list := append([]types.Resource(nil), byType[t]...)
		sort.Slice(list, func(i, j int) bool { return cachev3.GetResourceName(list[i]) < cachev3.GetResourceName(list[j]) })
		for _, r := range list {
			b, err := cachev3.MarshalResource(r)
			if err != nil {
				return "", fmt.Errorf("marshal %s %s: %w", t, cachev3.GetResourceName(r), err)
			}
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00", t, cachev3.GetResourceName(r), len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
