// Command runc-nocap is a runc wrapper for test machines whose capability
// bounding set lacks capabilities a privileged container asks for: this
// project's Firecracker VMs lack CAP_SYS_RESOURCE, so runc refuses every
// `docker run --privileged` (kind's node container, kube-proxy and
// kindnetd in it) with "unable to apply caps: operation not permitted".
//
// dockerd runs it in runc's place (`dockerd --add-runtime
// nocap=/path/runc-nocap --default-runtime nocap`, which
// scripts/kind-offline.sh does only where a capability is missing). It
// removes from the OCI spec it is handed every capability this process's
// bounding set lacks — the bundle's config.json on create and run, the
// --process file on exec — and, without CAP_SYS_RESOURCE, raises an
// oomScoreAdj below this process's own to it (lowering it needs that
// capability: the kubelet asks -998 for its static pods' sandboxes), and
// then execs the real runc ($RUNC_NOCAP_RUNC, default realRunc) with the
// same arguments. Inside a kind node it stands in for runc itself
// (scripts/kind-offline.sh installs it so on such a host).
// It is test-environment code: on a host with a full bounding set it is
// never installed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// realRunc is the runc it runs (-ldflags -X main.realRunc=PATH).
var realRunc = "/usr/sbin/runc"

func main() {
	real := os.Getenv("RUNC_NOCAP_RUNC")
	if real == "" {
		real = realRunc
	}
	if err := rewrite(os.Args[1:], bounding(), ownOOMScoreAdj()); err != nil {
		fmt.Fprintln(os.Stderr, "runc-nocap:", err)
		os.Exit(1)
	}
	err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "runc-nocap: exec", real+":", err)
	os.Exit(1)
}

// capNames are the capabilities by number, as the OCI spec names them.
var capNames = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

// bounding is the set of capability names this process may hold (its
// CapBnd); nil when it cannot be read, which leaves specs alone.
func bounding() map[string]bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil
			}
			return fromMask(mask)
		}
	}
	return nil
}

func fromMask(mask uint64) map[string]bool {
	out := map[string]bool{}
	for i, name := range capNames {
		if mask&(1<<i) != 0 {
			out[name] = true
		}
	}
	return out
}

// ownOOMScoreAdj is this process's oom_score_adj, below which nothing
// can be set without CAP_SYS_RESOURCE.
func ownOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return -1000
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1000
	}
	return v
}

// rewrite edits the spec runc is about to read, if the command has one.
func rewrite(args []string, allowed map[string]bool, minOOM int) error {
	if allowed == nil {
		return nil
	}
	cmd, flags := command(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(flags, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		return editFile(filepath.Join(bundle, "config.json"), allowed, minOOM, true)
	case "exec":
		if p := flagValue(flags, "--process", "-p"); p != "" {
			return editFile(p, allowed, minOOM, false)
		}
	}
	return nil
}

// globalWithValue are runc's global flags that take a value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// command finds runc's subcommand and the arguments after it.
func command(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case globalWithValue[a]:
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a, args[i+1:]
		}
	}
	return "", nil
}

// flagValue is the value of a flag given as --name v, --name=v or -n v.
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, long+"="); ok {
			return v
		}
		if (a == long || a == short) && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// editFile drops the disallowed capabilities from the spec at path: a
// whole config.json (its process object) or an exec's process.json.
func editFile(path string, allowed map[string]bool, minOOM int, whole bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	process := doc
	if whole {
		p, ok := doc["process"].(map[string]any)
		if !ok {
			return nil
		}
		process = p
	}
	changed := filter(process, allowed)
	if adj, ok := process["oomScoreAdj"].(float64); ok && !allowed["CAP_SYS_RESOURCE"] && int(adj) < minOOM {
		process["oomScoreAdj"] = minOOM
		changed = true
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// filter removes disallowed names from every capability set of process,
// and reports whether it changed anything.
func filter(process map[string]any, allowed map[string]bool) bool {
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := []any{}
		for _, c := range list {
			if name, ok := c.(string); ok && !allowed[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	return changed
}
