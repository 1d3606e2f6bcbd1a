package procattr

import (
	"regexp"
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// An id is a function of the image alone: every field changes it, and the
// exec, exit and fork records of one image agree.
func TestExecIDOf(t *testing.T) {
	if _, err := BootID(); err != nil {
		t.Fatalf("boot id: %v", err)
	}
	img := bpf.Image{PID: 42, StartBootNs: 123456789, ExecSeq: 3}
	id := ExecIDOf(img)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("id %q is not 32 hex digits", id)
	}
	for _, other := range []bpf.Image{{PID: 43, StartBootNs: 123456789, ExecSeq: 3},
		{PID: 42, StartBootNs: 123456790, ExecSeq: 3}, {PID: 42, StartBootNs: 123456789, ExecSeq: 4}} {
		if ExecIDOf(other) == id {
			t.Errorf("%+v has the id of %+v", other, img)
		}
	}
	records := map[string]*bpf.Event{"exec": {Kind: bpf.KindExec, PID: 42, PPID: 1, Image: img},
		"exit": {Kind: bpf.KindExit, PID: 42, Image: img}, "fork": {Kind: bpf.KindFork, PID: 42, Image: img}}
	for kind, ev := range records {
		got := MapSink{}
		(&Mapper{}).Attributes(ev, got)
		if got[ExecID] != id {
			t.Errorf("%s record: exec id %v, want %s", kind, got[ExecID], id)
		}
		if _, ok := got[ParentExecID]; ok != (ev.Kind == bpf.KindExec) {
			t.Errorf("%s record: parent exec id present %v", kind, ok)
		}
	}
}
