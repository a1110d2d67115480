package deploy

import (
	"fmt"
	"maps"
	"slices"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
)

// UserValues reads chart values the way `helm install -f FILE --set K=V`
// does: files in order, then each --set, later ones winning.
func UserValues(files, set []string) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("--values %s: %w", f, err)
		}
		out = chartutil.MergeTables(v.AsMap(), out) // v wins over what came before
	}
	for _, s := range set {
		if err := strvals.ParseInto(s, out); err != nil {
			return nil, fmt.Errorf("--set %s: %w (give key=value, e.g. images.redis=registry.example/redis:7)", s, err)
		}
	}
	return out, nil
}

// computedBy names the flag behind each value crawlctl computes, which a
// user's values may not set.
var computedBy = map[string]string{
	"components": "the budget flags (--proxies, --node-memory, --worker-memory, ...)", "partitions": "--partitions",
	"target":         "--target",
	"scrapeInterval": "crawlctl (deploy.ScrapeInterval)", "nodePorts": "crawlctl (stack.NodePorts)",
	"keda": "crawlctl (stack.DefaultTrigger)", "topics": "crawlctl (pkg/topics)", "groups": "crawlctl (pkg/topics)",
	"browserPlaywrightDir": "crawlctl (playwright.ImagePrefix)", "image": "--image", "browserImage": "--browser-image",
}

// CheckUser refuses a user value for what crawlctl computes (so the
// budget cannot be bypassed); the rest (images, kafka, gridToken, ...) is
// the user's to set.
func CheckUser(user map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(user)) {
		if flag, ok := computedBy[k]; ok {
			return fmt.Errorf("chart value %q is set by %s: drop it from --values/--set", k, flag)
		}
	}
	return nil
}

// mergeUser adds the user's values to the computed ones.
func mergeUser(user, computed map[string]any) (map[string]any, error) {
	if err := CheckUser(user); err != nil {
		return nil, err
	}
	return chartutil.MergeTables(maps.Clone(user), computed), nil
}
