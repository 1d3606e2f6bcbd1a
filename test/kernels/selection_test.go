package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every test an arm64 selection names exists (a renamed test would
// otherwise drop out of the arm64 guests unnoticed), and the selections
// fit the kernel command line with room for the rest.
func TestArm64SelectionsNameRealTests(t *testing.T) {
	defined := map[string]map[string]bool{}
	for pkg, glob := range map[string]string{"bpf": "../../bpf/*_test.go", "cli": "../../cmd/execsnoop/*_test.go"} {
		defined[pkg] = map[string]bool{}
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`).FindAllSubmatch(data, -1) {
				defined[pkg][string(m[1])] = true
			}
		}
		if len(defined[pkg]) == 0 {
			t.Fatalf("no tests found in %s", glob)
		}
	}
	for _, r := range releases {
		if r.Arch.Debian != "arm64" {
			continue
		}
		if r.BPFRun == "" || r.CLIRun == "" {
			t.Errorf("%s: no selection: every test under TCG does not fit the budget", r.Name)
		}
		for pkg, run := range map[string]string{"bpf": r.BPFRun, "cli": r.CLIRun} {
			names := strings.Split(strings.TrimSuffix(strings.TrimPrefix(run, "^("), ")$"), "|")
			for _, name := range names {
				if !defined[pkg][name] {
					t.Errorf("%s: %s selection names %s, which is not a test there", r.Name, pkg, name)
				}
			}
		}
		if n := len(r.BPFRun) + len(r.CLIRun); n > 1700 {
			t.Errorf("%s: selections of %d bytes leave too little of the 2048-byte command line", r.Name, n)
		}
	}
}
