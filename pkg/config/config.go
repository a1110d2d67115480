// Package config is crawlctl's configuration: its keys, defaults, flags and
// the precedence between them (flag > CRAWLCTL_ environment > config file >
// default).
//
// Every key is bound explicitly, so environment variables reach Unmarshal
// (viper ignores environment variables for keys it does not know).
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

// EnvPrefix starts every environment variable crawlctl reads.
const EnvPrefix = "CRAWLCTL"

// Config is the effective configuration. Its mapstructure tags are the keys
// of the config file; flags with the same names set them.
type Config struct {
	Name    string `mapstructure:"name" json:"name"`
	Output  string `mapstructure:"output" json:"output"`
	Verbose int    `mapstructure:"verbose" json:"verbose"`
	Quiet   bool   `mapstructure:"quiet" json:"quiet"`
	// NodeImage is the kind node image up --provider kind creates the
	// node from (empty: the one kind's release pins).
	NodeImage    string `mapstructure:"node-image" json:"node-image"`
	budget.Input `mapstructure:",squash"`
}

// Default is the configuration with no flag, variable or file.
func Default() Config {
	return Config{Name: "crawl", Output: "table", Input: budget.DefaultInput()}
}

// Setting is one configuration key with its default.
type Setting struct {
	Key     string
	Default any
}

// Settings lists every key of Config with its default, in declaration order.
func Settings() []Setting {
	var out []Setting
	walk(reflect.ValueOf(Default()), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]Setting) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		fv := v.Field(i)
		switch {
		case opts == "squash":
			walk(fv, prefix, out)
		case f.Type.Kind() == reflect.Struct:
			walk(fv, prefix+name+".", out)
		default:
			*out = append(*out, Setting{Key: prefix + name, Default: fv.Interface()})
		}
	}
}

// EnvVar is the environment variable for a key: CRAWLCTL_ and the key in
// upper case with '.' and '-' as '_' (sizes.proxy.memory-limit →
// CRAWLCTL_SIZES_PROXY_MEMORY_LIMIT).
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// NewViper returns a viper with every key's default and environment variable
// bound.
func NewViper() *viper.Viper {
	v := viper.New()
	for _, s := range Settings() {
		v.SetDefault(s.Key, s.Default)
		_ = v.BindEnv(s.Key, EnvVar(s.Key)) // only fails without a key
	}
	return v
}

// DefaultFile is $XDG_CONFIG_HOME/crawlctl/config.yaml, else
// ~/.config/crawlctl/config.yaml.
func DefaultFile() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "crawlctl", "config.yaml")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "crawlctl", "config.yaml")
}

// ReadFile reads the config file into v. An explicit path must exist; the
// default one may be absent.
func ReadFile(v *viper.Viper, path string) error {
	explicit := path != ""
	if !explicit {
		path = DefaultFile()
		if path == "" {
			return nil
		}
	}
	if _, err := os.Stat(path); err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	return nil
}

// Unmarshal decodes the effective configuration. A key no setting knows is
// an error, so a misspelt key in the config file does not pass silently.
func Unmarshal(v *viper.Viper) (Config, error) {
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		where := "configuration"
		if f := v.ConfigFileUsed(); f != "" {
			where = "config file " + f
		}
		return c, fmt.Errorf("%s: %s (a key comes from its flag, its %s_ variable or the config file; "+
			"`crawlctl config view` lists the keys)", where, decodeMessage(err), EnvPrefix)
	}
	return c, nil
}

// decodeMessage turns a mapstructure error into one line a user can act on.
func decodeMessage(err error) string {
	msg := strings.ReplaceAll(err.Error(), "decoding failed due to the following error(s):", "")
	msg = strings.ReplaceAll(msg, "'' has invalid keys:", "unknown keys:")
	var parts []string
	for line := range strings.Lines(msg) {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// KeyAnnotation marks a flag with the config key it sets (such flags come
// from the configuration, not from CRAWLCTL_<FLAG> variables).
const KeyAnnotation = "crawlctl.config.key"

// annotate ties flag name to key.
func annotate(fs *pflag.FlagSet, name, key string) {
	_ = fs.SetAnnotation(name, KeyAnnotation, []string{key}) // the flag was just added
}

// AddGlobalFlags adds the flags every command has.
func AddGlobalFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("name", d.Name, "cluster and stack name")
	fs.StringP("output", "o", d.Output, "output format: table, json or yaml")
	fs.CountP("verbose", "v", "more log output (repeat for more)")
	fs.BoolP("quiet", "q", false, "no progress output, errors only")
	for _, k := range []string{"name", "output", "verbose", "quiet"} {
		annotate(fs, k, k)
	}
}

// AddNodeImageFlag adds up's --node-image (env CRAWLCTL_NODE_IMAGE, config
// key node-image).
func AddNodeImageFlag(fs *pflag.FlagSet) {
	fs.String("node-image", "", "with --provider kind: the node image (default: kind's pinned kindest/node; scripts/kind-offline.sh prints one built here)")
	annotate(fs, "node-image", "node-image")
}

// sizeFlags are the per-pod size flags: --<component>-<field>.
var sizeFlags = []struct{ flag, key, what string }{
	{"proxy", "sizes.proxy", "egress proxy"},
	{"worker", "sizes.worker", "crawl worker"},
	{"graph-writer", "sizes.graph-writer", "graph writer"},
	{"browser", "sizes.browser", "browser worker"},
}

// AddBudgetFlags adds the flags that size the stack (budget, up).
func AddBudgetFlags(fs *pflag.FlagSet) {
	d := budget.DefaultInput()
	fs.String("profile", string(d.Profile), fmt.Sprintf("budget profile: %v", budget.Profiles))
	fs.String("node-memory", d.NodeMemory, "node memory budget (Kubernetes quantity)")
	fs.String("node-cpu", d.NodeCPU, "node CPUs (Kubernetes quantity)")
	fs.Int("proxies", d.Proxies, "egress proxies, one egress IP each")
	fs.Int("graph-writers", d.GraphWriters, "graph writer replicas")
	fs.Int("grid-workers", d.GridWorkers, "browser grid workers (0: no grid)")
	fs.Int("partitions", d.Partitions, "frontier topic partitions")
	fs.Bool("grafana", d.Grafana, "deploy Grafana with the overview dashboard")
	for _, k := range []string{"profile", "node-memory", "node-cpu", "proxies", "graph-writers", "grid-workers", "partitions", "grafana"} {
		annotate(fs, k, k)
	}
	sizes := map[string]budget.Size{"proxy": d.Sizes.Proxy, "worker": d.Sizes.Worker, "graph-writer": d.Sizes.GraphWriter, "browser": d.Sizes.Browser}
	for _, s := range sizeFlags {
		def := sizes[s.flag]
		for _, f := range []struct{ field, def, what string }{
			{"memory-request", def.MemoryRequest, "memory request"},
			{"memory-limit", def.MemoryLimit, "memory limit"},
			{"cpu-request", def.CPURequest, "CPU request"},
			{"cpu-limit", def.CPULimit, "CPU limit"},
		} {
			name := s.flag + "-" + f.field
			fs.String(name, f.def, fmt.Sprintf("%s %s per pod", s.what, f.what))
			annotate(fs, name, s.key+"."+f.field)
		}
	}
}

// BindFlags binds the annotated flags of fs to their keys. Call it for the
// command that runs only: a key is bound to one flag at a time, and several
// commands define the same flags.
func BindFlags(v *viper.Viper, fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if keys := f.Annotations[KeyAnnotation]; len(keys) == 1 && err == nil {
			err = v.BindPFlag(keys[0], f)
		}
	})
	return err
}
