//go:build linux

package k8s

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The oversized-request storm of test/e2e's
// TestLongArgvStormFitsDefaultReceiveLimits, from a pod through the real
// agent and gateway: execs with 30 KB arguments under args.max_bytes 32768,
// as fast as two workers go.
const (
	stormExecs    = 2000
	stormArgBytes = 30000
)

const stormYAML = `apiVersion: v1
kind: Pod
metadata:
  name: storm
  namespace: apps
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
    - name: storm
      image: %s
      imagePullPolicy: Never
      args: [storm, %s, "%d", "%d"]
`

// longArgvStorm: every exec of the storm reaches the gateway's sink with
// its whole argument, so no request of the agent or the gateway outgrew
// what the next hop accepts (a request over the gateway's 4 MiB is refused
// whole: its records would be missing here).
func (e *chartEnv) longArgvStorm(t *testing.T) {
	marker := "storm-" + e.marker
	if _, err := e.runIn([]byte(fmt.Sprintf(stormYAML, workloadImage, marker, stormExecs, stormArgBytes)), filepath.Join(e.bin, "kubectl"),
		"--kubeconfig="+e.kubecfg, "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer e.kubectl("delete", "pod", "storm", "-n", "apps", "--wait=false")
	start := time.Now()
	var whole, cut int
	count := func() (bool, error) {
		whole, cut = 0, 0
		for _, r := range e.records(func(r record) bool {
			a := args(r.lr)
			return isExec(r) && len(a) == 5 && a[1] == "tick" && a[2] == marker
		}) {
			if len(fmt.Sprint(args(r.lr)[4])) == stormArgBytes {
				whole++
			} else {
				cut++
			}
		}
		if whole+cut >= stormExecs {
			return true, nil
		}
		phase, _ := e.kubectl("get", "pod", "storm", "-n", "apps", "-o", "jsonpath={.status.phase}")
		return false, fmt.Errorf("%d of %d execs at the gateway so far, the storm pod is %s", whole+cut, stormExecs, strings.TrimSpace(phase))
	}
	defer func() {
		if t.Failed() {
			logs, _ := e.kubectl("logs", "-n", "execsnoop", "--all-containers", "--tail=50", "-l", "app.kubernetes.io/instance=execsnoop")
			t.Logf("the agent's and the gateway's last log lines:\n%s", logs)
		}
	}()
	waitFor(t, 5*time.Minute, fmt.Sprintf("all %d execs of the storm with %d-byte arguments at the gateway", stormExecs, stormArgBytes), count)
	if cut > 0 {
		t.Errorf("%d of %d storm records arrived with their %d-byte argument cut, although args.max_bytes is 32768", cut, stormExecs, stormArgBytes)
	}
	t.Logf("%d execs with %d-byte arguments from a pod: all at the gateway's sink after %s", whole, stormArgBytes, time.Since(start).Round(time.Second))
}
