//go:build linux

package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// archWords would tie the chart to one architecture: an architecture's
// name, or the node label that selects one.
var archWords = regexp.MustCompile(`(?i)amd64|arm64|aarch64|x86|kubernetes\.io/arch`)

// archProblems walks YAML and reports every key or string naming an
// architecture, and every scheduling constraint (a non-empty nodeSelector
// or affinity, any nodeAffinity) that could keep the agent off a node kind.
func archProblems(n *yaml.Node, where string) []string {
	var out []string
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			out = append(out, archProblems(c, fmt.Sprintf("%s[%d]", where, i))...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			at := where + "." + k.Value
			if archWords.MatchString(k.Value) {
				out = append(out, fmt.Sprintf("%s: the key names an architecture", at))
			}
			empty := len(v.Content) == 0 && (v.Kind == yaml.MappingNode || v.Tag == "!!null")
			if (k.Value == "nodeSelector" || k.Value == "affinity") && !empty || k.Value == "nodeAffinity" {
				out = append(out, fmt.Sprintf("%s: a scheduling constraint (line %d)", at, k.Line))
			}
			out = append(out, archProblems(v, at)...)
		}
	case yaml.ScalarNode:
		if m := archWords.FindString(n.Value); m != "" {
			out = append(out, fmt.Sprintf("%s: %q names an architecture (line %d)", where, m, n.Line))
		}
	}
	return out
}

// yamlProblems decodes every document of a YAML stream and walks it.
func yamlProblems(t *testing.T, what string, data []byte) []string {
	t.Helper()
	var out []string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", what, i, err)
		}
		out = append(out, archProblems(&doc, fmt.Sprintf("%s#%d", what, i))...)
	}
}

// TestChartAssumesNoArchitecture: the chart's values, templates and
// rendered objects name no architecture and constrain no scheduling, so
// the DaemonSet runs on amd64 and arm64 nodes alike (the image index has
// both). That the check can fail is shown on renders that pin the agent to
// amd64 nodes or an -arm64 tag: each must be reported.
func TestChartAssumesNoArchitecture(t *testing.T) {
	bin := os.Getenv("K8S_BIN_DIR")
	if bin == "" {
		t.Skip("K8S_BIN_DIR is unset: `make k8s-test` and `make check-manifests` build helm and run this test")
	}
	render := func(t *testing.T, args ...string) []byte {
		cmd := exec.Command(filepath.Join(bin, "helm"), append([]string{"template", "x", chartDir}, args...)...)
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helm template %v: %v", args, err)
		}
		return out
	}
	t.Run("values", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range yamlProblems(t, "values.yaml", b) {
			t.Error(p)
		}
	})
	t.Run("templates and schema", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
		files = append(files, filepath.Join(chartDir, "values.schema.json"), filepath.Join(chartDir, "Chart.yaml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range strings.Split(string(b), "\n") {
				if archWords.MatchString(l) {
					t.Errorf("%s:%d names an architecture: %s", filepath.Base(f), i+1, strings.TrimSpace(l))
				}
			}
		}
		if len(files) < 4 {
			t.Fatalf("only %d chart files found in %s", len(files), chartDir)
		}
	})
	for _, r := range []struct {
		name string
		args []string
	}{
		{"rendered defaults", nil},
		{"rendered with the gateway", []string{"--set", "gateway.enabled=true"}},
	} {
		t.Run(r.name, func(t *testing.T) {
			out := render(t, r.args...)
			if !bytes.Contains(out, []byte("kind: DaemonSet")) {
				t.Fatalf("no DaemonSet rendered:\n%s", out)
			}
			for _, p := range yamlProblems(t, "helm template", out) {
				t.Error(p)
			}
		})
	}
	t.Run("the check finds a pinned architecture", func(t *testing.T) {
		for _, args := range [][]string{
			{"--set", `agent.nodeSelector.kubernetes\.io/arch=amd64`},
			{"--set", "image.tag=1.0-arm64"},
			{"--set", "agent.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=disktype"},
		} {
			p := yamlProblems(t, "helm template", render(t, args...))
			if len(p) == 0 {
				t.Errorf("helm template %v: the check reported nothing", args)
			}
			t.Logf("%v: %q", args, p)
		}
	})
}
