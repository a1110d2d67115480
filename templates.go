// Package crawlctl holds what the binary embeds from the repository root:
// the Helm charts under templates/ (see pkg/deploy).
package crawlctl

import "embed"

// Templates are the embedded charts.
//
//go:embed all:templates
var Templates embed.FS
