package procattr

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
)

const (
	testContainerID = "3f2b8d0c9a1e4b7f8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"
	testPodUID      = "7f9d3c1e-2b4a-4c8d-9e1f-0a2b3c4d5e6f"
	testPodCgroup   = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7f9d3c1e_2b4a_4c8d_9e1f_0a2b3c4d5e6f.slice/cri-containerd-" + testContainerID + ".scope"
)

// podMapper resolves cgroups in a temporary tree with one pod's container
// and returns the mapper and that container's cgroup id.
func podMapper(t *testing.T) (*Mapper, uint64) {
	root := t.TempDir()
	dir := filepath.Join(root, testPodCgroup)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return &Mapper{Cgroups: cgroup.NewResolver(root)}, st.Ino
}

func TestLogRecord(t *testing.T) {
	m, cg := podMapper(t)
	ev := &bpf.Event{Kind: bpf.KindExec, PID: 10, Comm: "ls", Filename: "/usr/bin/ls", Args: []string{"ls"},
		Argc: 1, Time: start, CgroupID: cg, Retval: -2}
	l := m.Log(ev)
	if l.EventName != EventExec || !l.Time.Equal(start) || l.Severity != SeverityWarn || l.Body != "exec failed (ENOENT): ls" {
		t.Errorf("record %+v", l)
	}
	res := MapSink{}
	l.Resource.Resource(res)
	assertAttrs(t, res, MapSink{ContainerID: testContainerID, K8sPodUID: testPodUID})

	ev.CgroupID = 0
	res = MapSink{}
	m.Log(ev).Resource.Resource(res)
	if len(res) != 0 {
		t.Errorf("a host process has resource attributes %v", res)
	}
}
