//go:build linux

package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

const dropperYAML = `apiVersion: v1
kind: Pod
metadata:
  name: dropper
  namespace: apps
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: drop
      image: %s
      imagePullPolicy: Never
      args: [drop, %s, /dropped]
`

// droppedBinary is Falco's "Drop and execute new binary in container": a
// binary written into a running pod's container (its overlay's upper
// layer) and run there has upper_layer true and its content's hash, while
// the image's own binary, the same bytes, has upper_layer false.
func (e *chartEnv) droppedBinary(t *testing.T) {
	marker := e.marker + "-drop" // not the workload loop's: its checks count ticks by marker
	if _, err := e.runIn([]byte(fmt.Sprintf(dropperYAML, workloadImage, marker)), filepath.Join(e.bin, "kubectl"),
		"--kubeconfig="+e.kubecfg, "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.kubectl("delete", "pod", "dropper", "-n", "apps", "--wait=false") })
	var cid string
	waitFor(t, 90*time.Second, "the dropper pod to run", func() (bool, error) {
		out, err := e.kubectl("get", "pod", "dropper", "-n", "apps", "-o",
			`jsonpath={.status.phase} {.status.containerStatuses[0].containerID}`)
		phase, id, _ := strings.Cut(strings.TrimSpace(out), " ")
		if phase == "Failed" || phase == "Succeeded" {
			t.Fatalf("the dropper pod is %s, want Running:\n%s", phase, e.describe("apps"))
		}
		cid = strings.TrimPrefix(id, "containerd://")
		return phase == "Running" && cid != "", err
	})
	want := testenv.FileSHA256(t, workloadBinary(t))
	for _, c := range []struct {
		what  string
		args  []any
		upper bool
	}{
		{"the image's binary", []any{"/app", "drop", marker, "/dropped"}, false},
		{"the dropped binary", []any{"/dropped", "tick", marker, "dropped"}, true},
	} {
		r := e.waitRecord(t, c.what+"'s exec", func(r record) bool {
			return isExec(r) && fmt.Sprint(args(r.lr)) == fmt.Sprint(c.args)
		})
		attr := func(k string) any { return collectortest.Attr(r.lr.Attributes(), k) }
		t.Logf("%s: %s %v, upper_layer %v, sha256 %v (missing %v)", c.what, procattr.ProcessExecutablePath,
			attr(procattr.ProcessExecutablePath), attr(procattr.ExecutableUpperLayer),
			attr(procattr.ExecutableHashSHA256), attr(procattr.ExecutableHashMissing))
		if got := attr(procattr.ExecutableUpperLayer); got != c.upper {
			t.Errorf("%s: %s = %v, want %v", c.what, procattr.ExecutableUpperLayer, got, c.upper)
		}
		if got := attr(procattr.ExecutableHashSHA256); got != want {
			t.Errorf("%s: %s = %v (missing: %v), want %s, the workload binary's", c.what, procattr.ExecutableHashSHA256,
				got, attr(procattr.ExecutableHashMissing), want)
		}
		if p, _ := attr(procattr.ProcessExecutablePath).(string); !strings.HasSuffix(p, c.args[0].(string)) {
			t.Errorf("%s: %s = %q, want it to end in %s", c.what, procattr.ProcessExecutablePath, p, c.args[0])
		}
		if got := resAttr(r, procattr.ContainerID); got != cid {
			t.Errorf("%s: container.id = %q, want the pod's %q", c.what, got, cid)
		}
	}
}

// workloadBinary is the file the workload image holds as /app, beside its
// archive (make k8s-images builds bin/image/workload/app into workload.tar).
func workloadBinary(t *testing.T) string {
	for _, tar := range strings.Fields(os.Getenv("K8S_IMAGES")) {
		if filepath.Base(tar) == "workload.tar" {
			return filepath.Join(strings.TrimSuffix(tar, ".tar"), "app")
		}
	}
	t.Fatal("K8S_IMAGES names no workload.tar")
	return ""
}
