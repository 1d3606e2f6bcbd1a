//go:build linux

package k8s

import (
	"slices"
	"testing"
)

// The bridge plugin's rules carry comments with escaped quotes; the
// teardown must hand iptables -D the comment exactly as it was added.
func TestSplitRuleKeepsQuotedComments(t *testing.T) {
	got := splitRule(`POSTROUTING -s 10.244.0.7/32 -m comment --comment "name: \"execsnoop-test\" id: \"01a3\"" -j CNI-41f`)
	want := []string{"POSTROUTING", "-s", "10.244.0.7/32", "-m", "comment", "--comment",
		`name: "execsnoop-test" id: "01a3"`, "-j", "CNI-41f"}
	if !slices.Equal(got, want) {
		t.Errorf("splitRule = %q, want %q", got, want)
	}
}
