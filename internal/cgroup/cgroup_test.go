package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const id = "3f2b8d0c9a1e4b7f8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"

func TestContainerID(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"0::/system.slice/docker-" + id + ".scope", id},
		{"/docker/" + id, id},
		{"12:pids:/docker/" + id, id}, // cgroup v1 line
		{"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f9d3c1e_2b4a_4c8d_9e1f_0a2b3c4d5e6f.slice/cri-containerd-" + id + ".scope", id},
		{"/kubepods/burstable/pod7f9d3c1e-2b4a-4c8d-9e1f-0a2b3c4d5e6f/" + id, id},
		{"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podabc.slice/crio-" + id + ".scope", id},
		{"0::/machine.slice/libpod-" + id + ".scope/container", id},
		{"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope", id},
		{"0::/machine.slice/libpod-conmon-" + id + ".scope", ""},
		{"0::/kubepods.slice/crio-conmon-" + id + ".scope", ""},
		{"0::/user.slice/user-1000.slice/session-3.scope", ""},
		{"0::/system.slice/sshd.service", ""},
		{"0::/", ""},
		{"", ""},
		{"/docker/" + id[:63], ""},
	} {
		if got := ContainerID(tc.path); got != tc.want {
			t.Errorf("ContainerID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestPodUID(t *testing.T) {
	const uid = "7f9d3c1e-2b4a-4c8d-9e1f-0a2b3c4d5e6f"
	for _, tc := range []struct{ path, want string }{
		// cgroupfs driver: a container, the pod's own cgroup, a v1 line.
		{"/kubepods/burstable/pod" + uid + "/" + id, uid},
		{"/kubepods/besteffort/pod" + uid, uid},
		{"/kubepods/pod" + uid + "/" + id, uid}, // guaranteed QoS
		{"4:pids:/kubepods/besteffort/pod" + uid + "/" + id, uid},
		// systemd driver: dashes become underscores in the slice name.
		{"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f9d3c1e_2b4a_4c8d_9e1f_0a2b3c4d5e6f.slice/cri-containerd-" + id + ".scope", uid},
		{"0::/kubepods.slice/kubepods-pod7f9d3c1e_2b4a_4c8d_9e1f_0a2b3c4d5e6f.slice/crio-" + id + ".scope", uid},
		// Not pods: hosts, Docker, a malformed uid, a look-alike slice.
		{"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podabc.slice/crio-" + id + ".scope", ""},
		{"/kubepods/besteffort/pod" + uid[:35], ""},
		{"/kubepods/besteffort/pod" + strings.ToUpper(uid), ""},
		{"0::/system.slice/app-pod7f9d3c1e_2b4a_4c8d_9e1f_0a2b3c4d5e6f.slice", ""},
		{"0::/system.slice/docker-" + id + ".scope", ""},
		{"0::/user.slice/user-1000.slice/session-3.scope", ""},
		{"0::/", ""},
		{"", ""},
	} {
		if got := PodUID(tc.path); got != tc.want {
			t.Errorf("PodUID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestResolver(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "system.slice", "docker-"+id+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(root)
	want := "/system.slice/docker-" + id + ".scope"
	if got := r.Path(st.Ino); got != want {
		t.Fatalf("Path = %q, want %q", got, want)
	}
	if got := r.Path(1 << 62); got != "" {
		t.Fatalf("unknown id resolved to %q", got)
	}
}

func TestResolverHost(t *testing.T) {
	// The real hierarchy: the root cgroup's own directory resolves to "/".
	root, err := V2Root()
	if err != nil {
		t.Skip(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	if got := NewResolver(root).Path(st.Ino); got != "/" {
		t.Fatalf("root cgroup resolved to %q", got)
	}
}

// A cgroup created after the last walk resolves at once, by its handle.
func TestResolverFindsNewCgroupAtOnce(t *testing.T) {
	root, err := V2Root()
	if err != nil {
		t.Skip(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups and opening them by handle needs root")
	}
	r := NewResolver(root)
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
	if got := r.Path(st.Ino); got != "/" {
		t.Fatalf("root resolved to %q", got)
	}
	dir := filepath.Join(root, fmt.Sprintf("execsnoop-resolver-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Path(st.Ino), "/"+filepath.Base(dir); got != want {
		t.Fatalf("new cgroup resolved to %q, want %q", got, want)
	}
}
