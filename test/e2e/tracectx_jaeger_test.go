//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
)

// A script run with TRACEPARENT (as a CI system runs a step) shows up in
// Jaeger under the given trace id, below the given span, with its children
// below it and what each process used as tags.
func TestTraceparentInJaeger(t *testing.T) {
	bin := collectortest.Binary(t)
	otlpPort, queryPort := startJaeger(t)
	// No root pattern matches the script: only its TRACEPARENT starts
	// its trace.
	collectortest.Start(t, bin, "traces-source",
		collectortest.WriteConfig(t, "source", sourceConfig(otlpPort, `traces: {roots: ["no-root-matches-this"]}`,
			"execsnoop-e2e", "traces")))

	var traceID [16]byte
	var parentID [8]byte
	rand.Read(traceID[:])
	rand.Read(parentID[:])
	traceHex, parentHex := hex.EncodeToString(traceID[:]), hex.EncodeToString(parentID[:])
	sh := exec.Command("/bin/sh", "-c", "/bin/true; sleep 0.2; exit 0", "ci-step")
	sh.Env = []string{"PATH=/usr/bin:/bin", "TRACEPARENT=00-" + traceHex + "-" + parentHex + "-01", "TRACESTATE=ci=e2e"}
	if err := sh.Run(); err != nil {
		t.Fatal(err)
	}
	shPid := fmt.Sprint(sh.Process.Pid)

	url := fmt.Sprintf("http://127.0.0.1:%d/api/traces/%s", queryPort, traceHex)
	pollJaeger(t, url, fmt.Sprintf("trace %s with sh (pid %s) and its children true and sleep", traceHex, shPid), func(got jaegerTraces) bool {
		rootID, rootParent, cpu := "", "", false
		children := map[string]bool{}
		for _, trace := range got.Data {
			for _, s := range trace.Spans {
				for _, tag := range s.Tags {
					if tag.Key == "process.pid" && fmt.Sprint(tag.Value) == shPid {
						rootID = s.SpanID
						for _, ref := range s.References {
							if ref.RefType == "CHILD_OF" {
								rootParent = ref.SpanID
							}
						}
						for _, tag := range s.Tags {
							cpu = cpu || tag.Key == "execsnoop.process.cpu.time.user"
						}
					}
				}
			}
			for _, s := range trace.Spans {
				for _, ref := range s.References {
					if rootID != "" && ref.RefType == "CHILD_OF" && ref.SpanID == rootID {
						children[s.OperationName] = true
					}
				}
			}
		}
		if rootID != "" && children["true"] && children["sleep"] {
			if rootParent != parentHex {
				t.Errorf("the script's span is a child of %q, want the TRACEPARENT's span %s", rootParent, parentHex)
			}
			if !cpu {
				t.Errorf("the script's span has no execsnoop.process.cpu.time.user tag")
			}
			return true
		}
		return false
	})
}
