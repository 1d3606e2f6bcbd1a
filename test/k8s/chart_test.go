//go:build linux

package k8s

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// The images `make k8s-images` builds; the test's containerd imports them.
const (
	pauseImage    = "localhost/execsnoop-pause:test"
	workloadImage = "localhost/execsnoop-workload:test"
	gatewayIP     = "10.96.0.50" // the gateway Service's fixed ClusterIP (no DNS here)
	chartDir      = "../../deploy/helm/otelcol-execsnoop"
)

// capability numbers (linux/capability.h).
const (
	capDACReadSearch = 2
	capSysPtrace     = 19
	capPerfmon       = 38
	capBPF           = 39
)

type chartEnv struct {
	*cluster
	sink     string // the gateway's file exporter output
	image    string // repository:tag of the agent image
	marker   string
	helmHome string
}

func TestChartOnCluster(t *testing.T) {
	testenv.RequireRoot(t)
	bin := os.Getenv("K8S_BIN_DIR")
	if bin == "" {
		// `go test ./...` passes over it; `make k8s-test` (run by make test
		// and CI) sets K8S_BIN_DIR, so there it cannot skip.
		t.Skip("K8S_BIN_DIR is unset: `make k8s-test` builds the cluster's binaries and images and runs this test")
	}
	image := os.Getenv("AGENT_IMAGE")
	tars := strings.Fields(os.Getenv("K8S_IMAGES"))
	if image == "" || len(tars) == 0 {
		t.Fatal("AGENT_IMAGE and K8S_IMAGES must name the agent image and the image archives (make k8s-test sets them)")
	}
	c := startCluster(t, bin)
	for _, tar := range tars {
		if _, err := c.ctr("images", "import", "--all-platforms", tar); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := c.ctr("images", "ls", "-q")
	for _, want := range []string{image, pauseImage, workloadImage} {
		if !slices.Contains(strings.Fields(out), want) {
			t.Fatalf("image %s is not in containerd after import; it has:\n%s", want, out)
		}
	}
	e := &chartEnv{cluster: c, image: image, marker: fmt.Sprintf("execsnoop-k8s-%d", time.Now().UnixNano()),
		helmHome: filepath.Join(c.dir, "helm")}
	sinkDir := filepath.Join(c.dir, "sink")
	if err := os.MkdirAll(sinkDir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(sinkDir, 0o777) // the gateway runs as nobody
	e.sink = filepath.Join(sinkDir, "records.json")
	for _, ns := range []string{"execsnoop", "apps", "nobpf", "norbac"} {
		if _, err := c.kubectl("create", "namespace", ns); err != nil {
			t.Fatal(err)
		}
		if _, err := c.kubectl("label", "namespace", ns, "execsnoop-test=true"); err != nil {
			t.Fatal(err)
		}
	}
	values := e.write("values-main.yaml", []byte(e.values(sinkDir)))

	steps := []struct {
		name string
		f    func(*testing.T)
	}{
		{"StrictValidation", func(t *testing.T) { e.strict(t, values) }},
		{"DaemonSetReady", func(t *testing.T) { e.install(t, values) }},
		{"PodRecordHasPodMetadata", e.podRecord},
		{"BinaryDroppedIntoPodIsUpperLayer", e.droppedBinary},
		{"JobWithTraceparentYieldsSpans", e.jobSpans},
		{"HostRecordHasNoPodMetadata", e.hostRecord},
		{"OnlyNeededCapabilities", e.capabilities},
		{"WithoutCapBPFFailsWithOneLine", e.withoutCapBPF},
		{"WithoutRBACRecordsStillFlow", e.withoutRBAC},
		{"UpgradeRollMissesNoExec", func(t *testing.T) { e.upgradeRoll(t) }},
		// Last: its 60 MB at the sink would slow every later check's reads.
		{"LongArgvStormReachesTheGateway", e.longArgvStorm},
	}
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.f)
		c.logf("%s: %v in %s", s.name, map[bool]string{true: "passed", false: "FAILED"}[ok], time.Since(start).Round(time.Millisecond))
		if !ok && (s.name == "StrictValidation" || s.name == "DaemonSetReady") {
			t.FailNow()
		}
	}
}

// values are the main release's: the gateway on, exporting to a file in
// a host directory, at a fixed ClusterIP since the cluster has no DNS.
func (e *chartEnv) values(sinkDir string) string {
	repo, tag, _ := strings.Cut(e.image, ":")
	return fmt.Sprintf(`image:
  repository: %s
  tag: %q
  pullPolicy: Never
otlp:
  endpoint: %s:4317
agent:
  batch:
    timeout: 200ms
# Spans only of processes that bring a trace context (no roots match).
traces:
  enabled: true
receiver:
  # The storm check's 30 KB arguments arrive whole.
  args:
    max_bytes: 32768
  traces:
    roots: [execsnoop-k8s-no-root]
gateway:
  enabled: true
  service:
    port: 4317
    clusterIP: %[3]s
  exporters:
    file:
      path: /sink/records.json
      flush_interval: 100ms
  pipelineExporters: [file]
  extraVolumes:
    - name: sink
      hostPath: {path: %[4]s, type: Directory}
  extraVolumeMounts:
    - name: sink
      mountPath: /sink
`, repo, tag, gatewayIP, sinkDir)
}

func (e *chartEnv) helm(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(e.bin, "helm"), append(args, "--kubeconfig="+e.kubecfg)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+e.helmHome+"/cache",
		"HELM_CONFIG_HOME="+e.helmHome+"/config", "HELM_DATA_HOME="+e.helmHome+"/data")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// strict: every object the chart renders is accepted by the API server
// with strict field validation (an unknown or duplicate field fails).
func (e *chartEnv) strict(t *testing.T, values string) {
	manifest, err := e.helm("template", "execsnoop", chartDir, "--namespace=execsnoop", "--values="+values)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.runIn([]byte(manifest), filepath.Join(e.bin, "kubectl"), "--kubeconfig="+e.kubecfg,
		"create", "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(out, "(server dry run)")
	if n < 8 {
		t.Fatalf("only %d objects were checked:\n%s", n, out)
	}
	t.Logf("%d objects accepted with strict field validation", n)
}

// install: the chart installs and the DaemonSet has one ready pod.
func (e *chartEnv) install(t *testing.T, values string) {
	if _, err := e.helm("install", "execsnoop", chartDir, "--namespace=execsnoop", "--values="+values, "--wait", "--timeout=4m"); err != nil {
		t.Log(e.describe("execsnoop"))
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the DaemonSet to have one ready pod", func() (bool, error) {
		out, err := e.kubectl("get", "daemonset", "execsnoop-otelcol-execsnoop", "-n", "execsnoop",
			"-o", "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}")
		return out == "1/1", err
	})
}

func (e *chartEnv) describe(ns string) string {
	out, _ := e.kubectl("describe", "pods", "-n", ns)
	logs, _ := e.kubectl("logs", "-n", ns, "--all-containers", "--tail=20", "-l", "app.kubernetes.io/component=agent")
	return out + "\n--- agent logs:\n" + logs
}

// record is one log record at the sink with its resource attributes.
type record struct {
	res pcommon.Map
	lr  plog.LogRecord
}

func (e *chartEnv) records(match func(record) bool) []record {
	var out []record
	collectortest.EachLogRecord(e.sink, func(rl plog.ResourceLogs, _ plog.ScopeLogs, lr plog.LogRecord) {
		if r := (record{rl.Resource().Attributes(), lr}); match(r) {
			out = append(out, r)
		}
	})
	return out
}

func (e *chartEnv) waitRecord(t *testing.T, what string, match func(record) bool) record {
	t.Helper()
	var found []record
	waitFor(t, 60*time.Second, what+" at the sink", func() (bool, error) {
		found = e.records(match)
		return len(found) > 0, nil
	})
	return found[0]
}

func args(lr plog.LogRecord) []any {
	a, _ := collectortest.Attr(lr.Attributes(), procattr.ProcessCommandArgs).([]any)
	return a
}

func isExec(r record) bool { return r.lr.EventName() == procattr.EventExec }

// resAttr is a resource attribute as a string, "" when absent.
func resAttr(r record, key string) string {
	if v, ok := r.res.Get(key); ok {
		return v.AsString()
	}
	return ""
}

var podKeys = []string{"k8s.pod.name", "k8s.pod.uid", "k8s.namespace.name", "k8s.container.name", "k8s.deployment.name", "container.id"}

const workloadYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: workload
  namespace: apps
spec:
  replicas: 1
  selector:
    matchLabels: {app: workload}
  template:
    metadata:
      labels: {app: workload}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: loop
          image: %s
          imagePullPolicy: Never
          args: [loop, %s, 100ms]
`

// podRecord: an exec in a Deployment's pod reaches the sink with the pod's
// metadata.
func (e *chartEnv) podRecord(t *testing.T) {
	if _, err := e.runIn([]byte(fmt.Sprintf(workloadYAML, workloadImage, e.marker)), filepath.Join(e.bin, "kubectl"),
		"--kubeconfig="+e.kubecfg, "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	var pod string
	waitFor(t, 90*time.Second, "the workload pod to run", func() (bool, error) {
		out, err := e.kubectl("get", "pods", "-n", "apps", "-l", "app=workload", "-o",
			`jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\n"}{end}`)
		pod = strings.TrimSpace(out)
		return pod != "" && !strings.Contains(pod, "\n"), err
	})
	out, err := e.kubectl("get", "pod", pod, "-n", "apps", "-o", `jsonpath={.metadata.uid} {.status.containerStatuses[0].containerID}`)
	if err != nil {
		t.Fatal(err)
	}
	uid, cid, _ := strings.Cut(strings.TrimSpace(out), " ")
	cid = strings.TrimPrefix(cid, "containerd://")
	fromPod := func(r record) bool {
		a := args(r.lr)
		return isExec(r) && len(a) == 4 && a[2] == e.marker
	}
	e.waitRecord(t, "an exec of the workload pod", fromPod)
	// The first execs of a new pod may precede its metadata in the
	// processor's cache; later ones must carry it.
	var found []record
	deadline := time.Now().Add(30 * time.Second)
	for len(found) == 0 {
		found = e.records(func(r record) bool { return fromPod(r) && resAttr(r, "k8s.pod.name") != "" })
		if len(found) == 0 && time.Now().After(deadline) {
			all := e.records(fromPod)
			t.Fatalf("%d execs of the workload pod reached the sink, none with k8s.pod.name; the last one's resource: %v",
				len(all), all[len(all)-1].res.AsRaw())
		}
		time.Sleep(250 * time.Millisecond)
	}
	r := found[len(found)-1]
	want := map[string]string{
		"k8s.pod.name": pod, "k8s.pod.uid": uid, "k8s.namespace.name": "apps", "k8s.container.name": "loop",
		"k8s.deployment.name": "workload", "container.id": cid, "k8s.node.name": nodeName,
	}
	for k, v := range want {
		if got := resAttr(r, k); got != v {
			t.Errorf("resource %s = %q, want %q (resource: %v)", k, got, v, r.res.AsRaw())
		}
	}
}

// hostRecord: a command run on the host, outside any pod, has no pod
// metadata.
func (e *chartEnv) hostRecord(t *testing.T) {
	arg := "host-" + e.marker
	if err := exec.Command("/bin/true", arg).Run(); err != nil {
		t.Fatal(err)
	}
	r := e.waitRecord(t, "the host command's exec", func(r record) bool {
		return isExec(r) && slices.Contains(args(r.lr), any(arg))
	})
	for _, k := range podKeys {
		if v, ok := r.res.Get(k); ok {
			t.Errorf("a host process's record has %s=%q", k, v.AsString())
		}
	}
	if got := resAttr(r, "k8s.node.name"); got != nodeName {
		t.Errorf("k8s.node.name = %q, want %q", got, nodeName)
	}
}

func (e *chartEnv) uninstall(t *testing.T, release string) {
	if _, err := e.helm("uninstall", release, "--namespace="+release, "--wait", "--timeout=2m"); err != nil {
		t.Error(err)
	}
}

// upgradeRoll: `helm upgrade` with a changed config rolls the agent; the
// new pod starts before the old stops (maxSurge), so every exec of the
// steady loop reaches the sink.
func (e *chartEnv) upgradeRoll(t *testing.T) {
	seqs := func() map[int]int {
		m := map[int]int{}
		for _, r := range e.records(func(r record) bool {
			a := args(r.lr)
			return isExec(r) && len(a) == 4 && a[1] == "tick" && a[2] == e.marker
		}) {
			n, _ := strconv.Atoi(fmt.Sprint(args(r.lr)[3]))
			m[n]++
		}
		return m
	}
	maxSeq := func(m map[int]int) int {
		n := 0
		for k := range m {
			n = max(n, k)
		}
		return n
	}
	before := maxSeq(seqs())
	if before == 0 {
		t.Fatal("no exec of the loop at the sink before the roll")
	}
	old, _ := e.kubectl("get", "pods", "-n", "execsnoop", "-l", "app.kubernetes.io/component=agent", "-o", "jsonpath={.items[*].metadata.name}")

	// Watch the agent pods through the roll: two running at once is the surge.
	var mu sync.Mutex
	surged := false
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			out, _ := e.kubectl("get", "pods", "-n", "execsnoop", "-l", "app.kubernetes.io/component=agent", "-o",
				`jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\n"}{end}`)
			if len(strings.Fields(out)) >= 2 {
				mu.Lock()
				surged = true
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	if _, err := e.helm("upgrade", "execsnoop", chartDir, "--namespace=execsnoop", "--reuse-values",
		"--set", "agent.batch.timeout=300ms", "--wait", "--timeout=4m"); err != nil {
		close(done)
		t.Fatal(err)
	}
	if _, err := e.kubectl("rollout", "status", "daemonset/execsnoop-otelcol-execsnoop", "-n", "execsnoop", "--timeout=3m"); err != nil {
		close(done)
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the old agent pod to be gone", func() (bool, error) {
		out, err := e.kubectl("get", "pods", "-n", "execsnoop", "-l", "app.kubernetes.io/component=agent", "-o", "jsonpath={.items[*].metadata.name}")
		return err == nil && len(strings.Fields(out)) == 1 && out != old, err
	})
	close(done)
	t.Logf("rolled in %s", time.Since(start).Round(time.Millisecond))
	mu.Lock()
	if !surged {
		t.Error("never saw the old and new agent pods running together: the roll did not surge")
	}
	mu.Unlock()
	// Executions well after the roll must arrive too; then look for gaps.
	end := maxSeq(seqs()) + 20
	waitFor(t, 60*time.Second, fmt.Sprintf("exec %d of the loop at the sink", end), func() (bool, error) {
		return maxSeq(seqs()) >= end, nil
	})
	got := seqs()
	var missing []int
	dup := 0
	for n := before; n <= end; n++ {
		if got[n] == 0 {
			missing = append(missing, n)
		}
		if got[n] > 1 {
			dup++
		}
	}
	t.Logf("execs %d..%d across the roll: %d missing, %d seen twice (the overlap)", before, end, len(missing), dup)
	if len(missing) > 0 {
		t.Errorf("execs missing at the sink across the roll: %v", missing)
	}
}
