package config

import "testing"

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"crawl", true},
		{"lab-2", true},
		{"a", true},
		{"0", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{"/etc", false},
		{"-x", false},
		{"x-", false},
		{"Lab", false},
		{"a_b", false},
		{"a.b", false},
		{"a b", false},
		{"a\x00b", false},
		{string(make([]byte, 64)), false},
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", true},   // 63
		{"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", false}, // 64
	} {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
