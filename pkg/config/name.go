package config

import (
	"fmt"
	"regexp"
)

// nameRE is a DNS label (RFC 1123), as kind and Kubernetes name things.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// MaxNameLength keeps a stack name a DNS label.
const MaxNameLength = 63

// ValidateName checks a stack name. The name becomes a directory under the
// state root, the kind cluster's name and a Helm release, so it must be a
// DNS label: nothing like "", "..", "a/b" or "-x" gets that far.
func ValidateName(name string) error {
	if len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("stack name %q is not valid: use 1 to %d lowercase letters, digits and '-', "+
			"starting and ending with a letter or digit (set it with --name, CRAWLCTL_NAME or the config file's name key)",
			name, MaxNameLength)
	}
	return nil
}
