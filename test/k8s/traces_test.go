//go:build linux

package k8s

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/procattr"
)

// jobSteps is how many commands the CI job pod runs.
const jobSteps = 3

// A pod as a CI runner on Kubernetes starts one (GitLab's Kubernetes
// executor, Tekton, Argo, Actions Runner Controller): the job's trace
// context in TRACEPARENT, a script of several commands.
const jobYAML = `apiVersion: v1
kind: Pod
metadata:
  name: ci-job
  namespace: apps
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
    - name: job
      image: %s
      imagePullPolicy: Never
      args: [job, %s, "%d", 1s]
      env:
        - name: TRACEPARENT
          value: %s
`

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// span is one span at the sink with its resource attributes.
type span struct {
	res pcommon.Map
	s   ptrace.Span
}

func (e *chartEnv) spansIn(trace pcommon.TraceID) []span {
	var out []span
	collectortest.EachSpan(e.sink, func(rs ptrace.ResourceSpans, _ ptrace.ScopeSpans, s ptrace.Span) {
		if s.TraceID() == trace {
			out = append(out, span{rs.Resource().Attributes(), s})
		}
	})
	return out
}

func spanArgs(s span) []any {
	a, _ := collectortest.Attr(s.s.Attributes(), procattr.ProcessCommandArgs).([]any)
	return a
}

// jobSpans: with traces.enabled, a pod whose job carries TRACEPARENT
// yields a span per process in that trace at the gateway: the job's a
// child of the given span, each step a child of the job's, every one with
// the pod's metadata on its resource.
func (e *chartEnv) jobSpans(t *testing.T) {
	traceHex, parentHex := randomHex(t, 16), randomHex(t, 8)
	traceparent := "00-" + traceHex + "-" + parentHex + "-01"
	var trace pcommon.TraceID
	var parent pcommon.SpanID
	hex.Decode(trace[:], []byte(traceHex))
	hex.Decode(parent[:], []byte(parentHex))
	marker := "job-" + e.marker
	if _, err := e.runIn([]byte(fmt.Sprintf(jobYAML, workloadImage, marker, jobSteps, traceparent)), filepath.Join(e.bin, "kubectl"),
		"--kubeconfig="+e.kubecfg, "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer e.kubectl("delete", "pod", "ci-job", "-n", "apps", "--wait=false")
	var found []span
	waitFor(t, 120*time.Second, fmt.Sprintf("the job's %d spans in trace %s at the gateway", jobSteps+1, traceHex), func() (bool, error) {
		found = e.spansIn(trace)
		return len(found) >= jobSteps+1, nil
	})
	out, err := e.kubectl("get", "pod", "ci-job", "-n", "apps", "-o", `jsonpath={.metadata.uid} {.status.containerStatuses[0].containerID}`)
	if err != nil {
		t.Fatal(err)
	}
	uid, cid, _ := strings.Cut(strings.TrimSpace(out), " ")
	cid = strings.TrimPrefix(cid, "containerd://")
	want := map[string]string{"k8s.pod.name": "ci-job", "k8s.pod.uid": uid, "k8s.namespace.name": "apps",
		"k8s.container.name": "job", "container.id": cid, "k8s.node.name": nodeName}

	var job *span
	steps := map[string]span{}
	var forkedOnly []span
	for i, s := range found {
		a := spanArgs(s)
		switch {
		case len(a) == 5 && a[1] == "job" && a[2] == marker:
			job = &found[i]
		case len(a) == 4 && a[1] == "tick" && a[2] == marker:
			steps[fmt.Sprint(a[3])] = s
		case len(a) == 0 && s.s.Events().Len() == 0:
			// A child that never exec'd: Go's os/exec forks one (which
			// exits at once) to check that clone(CLONE_PIDFD) works.
			forkedOnly = append(forkedOnly, s)
		default:
			t.Errorf("a span in the job's trace that is neither the job nor a step: %q, attributes %v, resource %v", s.s.Name(), s.s.Attributes().AsRaw(), s.res.AsRaw())
		}
		for k, v := range want {
			if got := s.res.AsRaw()[k]; fmt.Sprint(got) != v {
				t.Errorf("span %q %v: resource %s = %v, want %q (resource: %v)", s.s.Name(), a, k, got, v, s.res.AsRaw())
			}
		}
	}
	if job == nil {
		t.Fatalf("no span of the job process among the trace's %d spans", len(found))
	}
	if job.s.ParentSpanID() != parent {
		t.Errorf("the job's span has parent %s, want the TRACEPARENT's span %s", job.s.ParentSpanID(), parentHex)
	}
	if len(steps) != jobSteps {
		t.Errorf("%d step spans, want %d", len(steps), jobSteps)
	}
	for _, s := range forkedOnly {
		if s.s.ParentSpanID() != job.s.SpanID() {
			t.Errorf("the span of a child the job forked (without exec) has parent %s, want the job's span %s", s.s.ParentSpanID(), job.s.SpanID())
		}
	}
	for n, s := range steps {
		if s.s.ParentSpanID() != job.s.SpanID() {
			t.Errorf("step %s's span has parent %s, want the job's span %s", n, s.s.ParentSpanID(), job.s.SpanID())
		}
	}
	t.Logf("trace %s: the job's span (parent %s) and %d steps (and %d children forked without exec) under it, each with pod %s's metadata",
		traceHex, parentHex, len(steps), len(forkedOnly), uid)
}
