//go:build linux

package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValuesAreValidated: values.schema.json makes a wrong type or an
// unknown key fail the chart (helm template runs the same validation as
// helm install), naming the key; the defaults pass.
func TestValuesAreValidated(t *testing.T) {
	bin := os.Getenv("K8S_BIN_DIR")
	if bin == "" {
		t.Skip("K8S_BIN_DIR is unset: `make k8s-test` builds helm and runs this test")
	}
	helm := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "helm"), append([]string{"template", "x", chartDir}, args...)...)
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := helm(); err != nil {
		t.Fatalf("the default values fail: %v\n%s", err, out)
	}
	if out, err := helm("--set", "gateway.enabled=true", "--set", "otlp.tls.enabled=true", "--set", "otlp.tls.secretName=gw-ca"); err != nil {
		t.Fatalf("gateway and TLS values fail: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		set  []string
		want []string // all in the error
	}{
		{"unknown top-level key", []string{"--set", "agnet.logLevel=debug"}, []string{"agnet"}},
		{"unknown nested key", []string{"--set", "agent.resources.limits.memroy=1Gi"}, []string{"memroy"}},
		{"unknown receiver setting", []string{"--set", "receiver.args.max_byte=10"}, []string{"max_byte"}},
		{"wrong type", []string{"--set-string", "receiver.exits=yes"}, []string{"exits", "boolean"}},
		{"capability not allowed", []string{"--set", "agent.capabilities={SYS_MODULE}"}, []string{"capabilities"}},
		{"memory limit not in Mi", []string{"--set", "agent.resources.limits.memory=1Gi"}, []string{"memory"}},
		{"TLS without a secret", []string{"--set", "otlp.tls.enabled=true"}, []string{"otlp.tls.secretName"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helm(tc.set...)
			if err == nil {
				t.Fatalf("helm accepted %v", tc.set)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the error does not name %q:\n%s", w, out)
				}
			}
			t.Logf("%s", strings.TrimSpace(out))
		})
	}
}

// TestPtraceOnlyWithHashing: the agent gets CAP_SYS_PTRACE exactly while
// executable hashing is on (the default), to open /proc/PID/exe.
func TestPtraceOnlyWithHashing(t *testing.T) {
	bin := os.Getenv("K8S_BIN_DIR")
	if bin == "" {
		t.Skip("K8S_BIN_DIR is unset: `make k8s-test` builds helm and runs this test")
	}
	render := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "helm"), append([]string{"template", "x", chartDir, "--show-only", "templates/daemonset.yaml"}, args...)...)
		home := t.TempDir()
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm template %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := render(); !strings.Contains(out, "- SYS_PTRACE\n") {
		t.Errorf("hashing on by default, and the agent has no SYS_PTRACE:\n%s", out)
	}
	if out := render("--set", "receiver.executable.hash.enabled=false"); strings.Contains(out, "SYS_PTRACE") {
		t.Errorf("hashing off, and the agent still gets SYS_PTRACE:\n%s", out)
	}
}
