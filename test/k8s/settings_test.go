//go:build linux

package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
	"github.com/otelexecsnoop/execsnoop/receiver/execsnoopreceiver"
)

// examples are valid values, other than the default, of the settings a
// rule cannot make one for (strings without an enum, lists).
var examples = map[string]any{
	"filters.cgroup":        "/sys/fs/cgroup/system.slice",
	"filters.uids":          []any{0, 1000},
	"filters.include_comms": []any{"sh*", "make"},
	"filters.exclude_comms": []any{"kube-probe*"},
	"redaction.patterns":    []any{`internal-token-(?P<v>\w+)`},
	"traces.roots":          []any{"make", "bash ci.sh*"},
	"exec_context":          []any{"credentials", "session"},
}

// nonDefault is a valid value of s other than its default, as the values
// file (JSON) writes it.
func nonDefault(t *testing.T, s execsnoopreceiver.Setting) any {
	if v, ok := examples[s.Key]; ok {
		return v
	}
	switch d := s.Default.(type) {
	case bool:
		return !d
	case int:
		if s.Max != nil && s.Max != d {
			return s.Max
		}
		return d + 1
	case time.Duration:
		if s.Max != nil && s.Max != d {
			return s.Max.(time.Duration).String()
		}
		return (d + time.Millisecond).String()
	case string:
		for _, e := range s.Enum {
			if e != d {
				return e
			}
		}
	}
	t.Fatalf("receiver setting %s (%s, default %v) has no example value: add one to examples", s.Key, s.Kind, s.Default)
	return nil
}

// TestEveryReceiverSettingRenders: the chart takes every receiver
// setting, each at a value other than its default, puts it into the
// agent's collector configuration unchanged, and the real collector
// accepts that configuration with traces.enabled (both pipelines).
func TestEveryReceiverSettingRenders(t *testing.T) {
	bin := os.Getenv("K8S_BIN_DIR")
	if bin == "" {
		t.Skip("K8S_BIN_DIR is unset: `make k8s-test` builds helm and runs this test")
	}
	otelcol := collectortest.Binary(t)
	receiver := map[string]any{}
	want := map[string]any{}
	for _, s := range execsnoopreceiver.Settings() {
		v := nonDefault(t, s)
		want[s.Key] = v
		m := receiver
		parts := strings.Split(s.Key, ".")
		for _, p := range parts[:len(parts)-1] {
			if m[p] == nil {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	dir := t.TempDir()
	values, err := json.Marshal(map[string]any{"receiver": receiver, "traces": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	valuesFile := filepath.Join(dir, "values.json")
	writeFile(t, valuesFile, values)
	cmd := exec.Command(filepath.Join(bin, "helm"), "template", "x", chartDir, "--values="+valuesFile,
		"--show-only=templates/configmap.yaml")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
	manifest, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm template with every setting (%s): %v\n%s", values, err, manifest)
	}
	manifestFile := filepath.Join(dir, "configmap.yaml")
	writeFile(t, manifestFile, manifest)
	cm, err := confmaptest.LoadConf(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	config, _ := cm.Get("data::config.yaml").(string)
	configFile := filepath.Join(dir, "config.yaml")
	writeFile(t, configFile, []byte(config))

	rendered, err := confmaptest.LoadConf(configFile)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := rendered.Sub("receivers::execsnoop")
	if err != nil {
		t.Fatal(err)
	}
	got := testenv.Flatten(sub.ToStringMap())
	for k, w := range want {
		wj, _ := json.Marshal(w)
		gj, _ := json.Marshal(got[k])
		if string(wj) != string(gj) {
			t.Errorf("receiver %s: set to %s, rendered as %s", k, wj, gj)
		}
	}
	logs, traces := rendered.Get("service::pipelines::logs"), rendered.Get("service::pipelines::traces")
	if traces == nil || !reflect.DeepEqual(logs, traces) {
		t.Errorf("with traces.enabled the traces pipeline should be the logs one's twin: logs %v, traces %v", logs, traces)
	}

	validate := exec.Command(otelcol, "validate", "--config="+configFile)
	validate.Env = append(os.Environ(), "K8S_NODE_NAME=validate")
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("the collector rejects the chart's configuration with every setting: %v\n%s\n%s", err, out, config)
	}
	t.Logf("%d settings rendered and validated by %s", len(want), otelcol)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(fmt.Errorf("writing %s: %w", path, err))
	}
}
