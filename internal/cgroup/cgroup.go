// Package cgroup turns the cgroup ids the kernel reports into cgroup paths
// and container ids.
package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// V2Root returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func V2Root() (string, error) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(mounts)) {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			return f[1], nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// Resolver maps cgroup v2 ids (the inode numbers of cgroup directories) to
// paths relative to the hierarchy's root, as /proc/PID/cgroup shows them.
// A new id is opened by its file handle (exact and immediate, so a new
// container's first exec is attributed; needs CAP_DAC_READ_SEARCH, which
// root has); failing that, the hierarchy is walked, at most once per
// rescanEvery, so an unknown id costs one walk, not one per event.
type Resolver struct {
	root        string
	rescanEvery time.Duration

	mu       sync.Mutex
	paths    map[uint64]string
	lastScan time.Time
	handles  handleOpener
}

// maxPaths bounds the cache; ids of removed cgroups would pile up otherwise.
const maxPaths = 1 << 16

// NewResolver returns a resolver for the hierarchy mounted at root.
func NewResolver(root string) *Resolver {
	return &Resolver{root: root, rescanEvery: time.Second, paths: make(map[uint64]string)}
}

// Path returns the cgroup path of id ("/system.slice/foo.service"), or ""
// when the id is unknown (the cgroup is gone, or the hierarchy is not v2).
func (r *Resolver) Path(id uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p
	}
	if len(r.paths) >= maxPaths {
		clear(r.paths)
	}
	if p, ok := r.handles.path(r.root, id); ok {
		r.paths[id] = p
		return p
	}
	if time.Since(r.lastScan) < r.rescanEvery {
		return ""
	}
	r.scan()
	return r.paths[id]
}

// Close releases the file descriptor the handle lookups use.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handles.close()
}

func (r *Resolver) scan() {
	r.lastScan = time.Now()
	clear(r.paths)
	_ = filepath.WalkDir(r.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed during the walk
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel := strings.TrimPrefix(path, r.root)
		if rel == "" {
			rel = "/"
		}
		r.paths[st.Ino] = rel
		return nil
	})
}

// ContainerID finds a container runtime's 64-hex-digit id in a cgroup path
// or a /proc/PID/cgroup line (v1 or v2). It knows the layouts of Docker
// (docker-ID.scope, /docker/ID), containerd and CRI (cri-containerd-ID.scope,
// /kubepods/.../podUID/ID), CRI-O (crio-ID.scope) and Podman (libpod-ID.scope);
// runtime monitors (conmon) are not containers. It returns "" otherwise.
func ContainerID(path string) string {
	if i := strings.LastIndexByte(path, ':'); i >= 0 { // "0::/path" or "4:pids:/path"
		path = path[i+1:]
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		part := parts[i]
		if strings.Contains(part, "conmon") {
			return ""
		}
		part = strings.TrimSuffix(part, ".scope")
		if j := strings.LastIndexAny(part, "-:"); j >= 0 {
			part = part[j+1:]
		}
		if isContainerID(part) {
			return part
		}
	}
	return ""
}

// PodUID finds the uid of the Kubernetes pod whose cgroup holds path (a
// cgroup path or a /proc/PID/cgroup line), as the kubelet names pod cgroups:
// "pod<uid>" with the cgroupfs driver (/kubepods/besteffort/pod<uid>/...) and
// "kubepods[-<qos>]-pod<uid with _ for ->.slice" with the systemd driver.
// It returns "" outside a pod. k8s_attributes associates a process with its
// pod by this uid when the container id is not (yet) in the pod's status.
func PodUID(path string) string {
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		path = path[i+1:]
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		part := parts[i]
		if s, ok := strings.CutSuffix(part, ".slice"); ok {
			j := strings.LastIndex(s, "-pod")
			if j < 0 || !strings.HasPrefix(s, "kubepods") {
				continue
			}
			part = strings.ReplaceAll(s[j+len("-pod"):], "_", "-")
		} else if s, ok := strings.CutPrefix(part, "pod"); ok {
			part = s
		} else {
			continue
		}
		if isUID(part) {
			return part
		}
	}
	return ""
}

// isUID reports whether s is a UUID in its 8-4-4-4-12 lower-case hex form,
// as Kubernetes writes object uids.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
