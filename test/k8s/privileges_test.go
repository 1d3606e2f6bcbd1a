//go:build linux

package k8s

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agentPID is the host PID of the agent container's process.
func (e *chartEnv) agentPID(t *testing.T, ns string) int {
	out, err := e.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=agent", "-o",
		`jsonpath={range .items[*]}{.status.containerStatuses[0].containerID}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		t.Fatalf("want one agent container, have %q", out)
	}
	id := strings.TrimPrefix(ids[0], "containerd://")
	tasks, err := e.ctr("tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(tasks, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid, _ := strconv.Atoi(f[1])
			return pid
		}
	}
	t.Fatalf("no task for container %s:\n%s", id, tasks)
	return 0
}

// capabilities: the agent process holds exactly CAP_BPF, CAP_PERFMON,
// CAP_DAC_READ_SEARCH and (executable.hash.enabled is on by default)
// CAP_SYS_PTRACE, in every set that grants anything.
func (e *chartEnv) capabilities(t *testing.T) {
	pid := e.agentPID(t, "execsnoop")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(1)<<capBPF | 1<<capPerfmon | 1<<capDACReadSearch | 1<<capSysPtrace
	sets := map[string]uint64{}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":\t")
		if ok && strings.HasPrefix(k, "Cap") {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			sets[k] = n
		}
		if k == "NoNewPrivs" && strings.TrimSpace(v) != "1" {
			t.Errorf("NoNewPrivs = %s, want 1 (allowPrivilegeEscalation: false)", v)
		}
	}
	for _, k := range []string{"CapPrm", "CapEff", "CapBnd"} {
		if sets[k] != want {
			t.Errorf("%s = %016x, want %016x (BPF, PERFMON, DAC_READ_SEARCH, SYS_PTRACE)", k, sets[k], want)
		}
	}
	for _, k := range []string{"CapInh", "CapAmb"} {
		if sets[k] != 0 {
			t.Errorf("%s = %016x, want 0", k, sets[k])
		}
	}
	t.Logf("agent pid %d: CapEff=%016x CapBnd=%016x", pid, sets["CapEff"], sets["CapBnd"])
}

// withoutCapBPF: a release whose values drop BPF from the capabilities
// fails with one line naming CAP_BPF, which is the termination message.
func (e *chartEnv) withoutCapBPF(t *testing.T) {
	repo, tag, _ := strings.Cut(e.image, ":")
	if _, err := e.helm("install", "nobpf", chartDir, "--namespace=nobpf",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "otlp.endpoint="+gatewayIP+":4317", "--set", "agent.capabilities={PERFMON,DAC_READ_SEARCH}"); err != nil {
		t.Fatal(err)
	}
	defer e.uninstall(t, "nobpf")
	var msg string
	waitFor(t, 90*time.Second, "the agent without CAP_BPF to terminate", func() (bool, error) {
		out, err := e.kubectl("get", "pods", "-n", "nobpf", "-o",
			`jsonpath={.items[0].status.containerStatuses[0].lastState.terminated.message}{.items[0].status.containerStatuses[0].state.terminated.message}`)
		msg = strings.TrimSpace(out)
		return msg != "", err
	})
	lines := strings.Split(msg, "\n")
	last := lines[len(lines)-1]
	t.Logf("termination message ends: %s", last)
	if !strings.Contains(last, "CAP_BPF") {
		t.Errorf("the termination message's last line does not name CAP_BPF:\n%s", msg)
	}
	desc, _ := e.kubectl("describe", "pods", "-n", "nobpf")
	if !strings.Contains(desc, "CAP_BPF") {
		t.Errorf("kubectl describe pod does not show the reason:\n%s", desc)
	}
}

// withoutRBAC: a release without its ClusterRole still delivers records
// (without pod metadata) and its agent logs why the metadata is missing.
func (e *chartEnv) withoutRBAC(t *testing.T) {
	repo, tag, _ := strings.Cut(e.image, ":")
	override := e.write("values-norbac.yaml", []byte(`agent:
  configOverride:
    processors:
      resource/node:
        attributes:
          - {key: k8s.node.name, value: "${env:K8S_NODE_NAME}", action: upsert}
          - {key: test.release, value: norbac, action: upsert}
`))
	if _, err := e.helm("install", "norbac", chartDir, "--namespace=norbac", "--values="+override,
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "otlp.endpoint="+gatewayIP+":4317", "--set", "rbac.create=false", "--wait", "--timeout=3m"); err != nil {
		t.Log(e.describe("norbac"))
		t.Fatal(err)
	}
	defer e.uninstall(t, "norbac")
	r := e.waitRecord(t, "a workload exec through the agent without RBAC", func(r record) bool {
		a := args(r.lr)
		return isExec(r) && resAttr(r, "test.release") == "norbac" && len(a) == 4 && a[2] == e.marker
	})
	for _, k := range []string{"k8s.pod.name", "k8s.namespace.name", "k8s.deployment.name"} {
		if v, ok := r.res.Get(k); ok {
			t.Errorf("without RBAC a record has %s=%q", k, v.AsString())
		}
	}
	var logs string
	waitFor(t, 60*time.Second, "the agent to log the RBAC error", func() (bool, error) {
		out, err := e.kubectl("logs", "-n", "norbac", "-l", "app.kubernetes.io/component=agent", "--tail=-1")
		logs = out
		return strings.Contains(out, "forbidden") && strings.Contains(out, "pods"), err
	})
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "forbidden") {
			t.Logf("agent log: %.300s", line)
			break
		}
	}
}
