//go:build linux

// Package k8s runs the Helm chart on a real one-node Kubernetes cluster
// assembled from parts: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet and kube-proxy built from the module proxy
// (tools/kubernetes), Debian's containerd, runc and CNI plugins, and images
// built locally (no registry is reachable). `make k8s-test` builds all of it
// and runs this test; it needs root.
package k8s

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	nodeName    = "execsnoop-node"
	serviceCIDR = "10.96.0.0/16"
	podSubnet   = "10.244.0.0/24"
	etcdPort    = 12379
	etcdPeer    = 12380
	apiPort     = 6443
)

// cluster is the running cluster and everything needed to undo it.
type cluster struct {
	t       *testing.T
	bin     string // directory of the binaries
	dir     string // state: certificates, configs, data, logs
	nodeIP  string
	procs   map[string]*exec.Cmd
	sock    string // containerd's socket
	kubecfg string
	host    hostState
}

// logf prints progress with the time, so a slow step shows in CI's log.
func (c *cluster) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func hostIP() (string, error) {
	conn, err := net.Dial("udp", "192.0.2.1:9") // no packet is sent
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// startCluster brings the whole cluster up; t.Cleanup takes it down again,
// also when a step fails half-way.
func startCluster(t *testing.T, bin string) *cluster {
	ip, err := hostIP()
	if err != nil {
		t.Fatalf("no host address for the node: %v", err)
	}
	dir, err := os.MkdirTemp("", "execsnoop-k8s-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, bin: bin, dir: dir, nodeIP: ip, procs: map[string]*exec.Cmd{}}
	c.sock = filepath.Join(dir, "containerd", "containerd.sock")
	c.kubecfg = filepath.Join(dir, "admin.kubeconfig")
	t.Cleanup(c.stop)
	c.snapshotHost()
	start := time.Now()
	c.pki()
	c.startEtcd()
	c.startAPIServer()
	c.startControlPlane()
	c.startContainerd()
	c.startKubelet()
	c.startKubeProxy()
	c.logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
	return c
}

// --- certificates ---------------------------------------------------------

// stop takes the cluster down in dependency order and undoes what its
// components changed on the host; it reports what it could not undo.
func (c *cluster) stop() {
	start := time.Now()
	// Pods first, while the kubelet can still stop them and release their
	// network namespaces.
	if c.procs["kubelet"] != nil && c.procs["kube-apiserver"] != nil {
		_, _ = c.kubectl("delete", "namespace", "--wait=false", "-l", "execsnoop-test=true")
		_, _ = c.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false")
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			out, err := c.ctr("tasks", "ls", "-q")
			if err != nil || strings.TrimSpace(out) == "" {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for _, name := range []string{"kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager"} {
		c.kill(name)
	}
	// Whatever the kubelet left running: kill tasks, remove containers.
	// (A failed ls lists nothing: its output is an error, not ids.)
	if c.procs["containerd"] != nil {
		out, err := c.ctr("tasks", "ls", "-q")
		if err != nil {
			c.t.Errorf("listing containerd's tasks at teardown: %v", err)
			out = ""
		}
		for _, id := range strings.Fields(out) {
			_, _ = c.ctr("tasks", "kill", "-a", "-s", "SIGKILL", id)
		}
		for _, id := range strings.Fields(out) {
			waitGone := time.Now().Add(10 * time.Second)
			for time.Now().Before(waitGone) {
				if _, err := c.ctr("tasks", "delete", id); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if out, err = c.ctr("containers", "ls", "-q"); err != nil {
			out = ""
		}
		for _, id := range strings.Fields(out) {
			_, _ = c.ctr("containers", "rm", id)
		}
	}
	c.kill("containerd")
	c.killShims()
	if out, err := exec.Command(filepath.Join(c.bin, "kube-proxy"), "--cleanup").CombinedOutput(); err != nil {
		c.t.Errorf("kube-proxy --cleanup: %v: %s", err, out)
	}
	c.kill("kube-apiserver") // before etcd, which it needs to shut down cleanly
	c.kill("etcd")
	c.unmountAll()
	c.restoreHost()
	if c.t.Failed() {
		for _, name := range []string{"kubelet", "containerd", "kube-apiserver"} {
			c.t.Logf("--- end of %s's log:\n%s", name, c.tail(name, 40))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.t.Errorf("remove %s: %v", c.dir, err)
	}
	c.logf("cluster taken down in %s", time.Since(start).Round(time.Millisecond))
}
