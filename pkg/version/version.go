// Package version holds the build's version, commit and date, injected by
// the linker:
//
//	go build -ldflags "-X github.com/crawlctl/crawlctl/pkg/version.Version=v0.1.0 ..."
package version

import "runtime/debug"

// Set by -ldflags -X at release time.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is what `crawlctl version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
}

// Get returns the build's Info. A build without ldflags falls back to the
// VCS stamp Go records, when there is one.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}
