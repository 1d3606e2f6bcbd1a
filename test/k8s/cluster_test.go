//go:build linux

// Package k8s runs the Helm chart on a real one-node Kubernetes cluster
// assembled from parts: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet and kube-proxy built from the module proxy
// (tools/kubernetes), Debian's containerd, runc and CNI plugins, and images
// built locally (no registry is reachable). `make k8s-test` builds all of it
// and runs this test; it needs root.
package k8s

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
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

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (c *cluster) write(name string, data []byte) string {
	p := filepath.Join(c.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cluster) issue(name string, ca *keyPair, tmpl *x509.Certificate) *keyPair {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		c.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	c.write(name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c.write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return &keyPair{cert, key}
}

// pki makes a CA, the API server's serving certificate, one client
// certificate in system:masters for every component (a test cluster; a
// real one gives each its own identity), and the service account key.
func (c *cluster) pki() {
	ca := c.issue("ca", nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "execsnoop-test-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	c.issue("apiserver", ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1"), net.ParseIP(c.nodeIP)},
	})
	c.issue("admin", ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	})
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	saDER, _ := x509.MarshalECPrivateKey(sa)
	pubDER, _ := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	c.write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}))
	c.write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	c.write("admin.kubeconfig", []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %[2]s/ca.crt
users:
- name: admin
  user:
    client-certificate: %[2]s/admin.crt
    client-key: %[2]s/admin.key
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, apiPort, c.dir)))
}

// --- processes --------------------------------------------------------------

// run starts a long-running component with its output in dir/name.log.
func (c *cluster) run(name, path string, args ...string) {
	c.t.Helper()
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.procs[name] = cmd
	c.logf("started %s (pid %d)", name, cmd.Process.Pid)
}

// kill stops a component (SIGTERM, then SIGKILL after 10 s) and its group.
func (c *cluster) kill(name string) {
	cmd, ok := c.procs[name]
	if !ok {
		return
	}
	delete(c.procs, name)
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.logf("%s did not stop on SIGTERM; killing it", name)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // anything left in its group
}

// exited fails the test when a component died, with the end of its log.
func (c *cluster) alive(name string) error {
	cmd := c.procs[name]
	if cmd == nil {
		return fmt.Errorf("%s is not running", name)
	}
	var ws syscall.WaitStatus
	pid, _ := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	if pid == cmd.Process.Pid {
		delete(c.procs, name)
		return fmt.Errorf("%s exited (%v); its log ends:\n%s", name, ws, c.tail(name, 30))
	}
	return nil
}

func (c *cluster) tail(name string, n int) string {
	data, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitUp waits for cond while the component stays alive.
func (c *cluster) waitUp(name string, timeout time.Duration, what string, cond func() (bool, error)) {
	c.t.Helper()
	waitFor(c.t, timeout, what, func() (bool, error) {
		if err := c.alive(name); err != nil {
			c.t.Fatal(err)
		}
		return cond()
	})
	c.logf("%s: %s", name, what)
}

func (c *cluster) httpsOK(url string) func() (bool, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.dir, "admin.crt"), filepath.Join(c.dir, "admin.key"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(c.dir, "ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}}
	return func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Errorf("%s: %s", url, resp.Status)
	}
}

// --- components -----------------------------------------------------------

func (c *cluster) startEtcd() {
	c.run("etcd", filepath.Join(c.bin, "etcd"),
		"--name=test", "--data-dir="+filepath.Join(c.dir, "etcd"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
		fmt.Sprintf("--initial-cluster=test=http://127.0.0.1:%d", etcdPeer),
		"--log-level=warn")
	c.waitUp("etcd", 60*time.Second, "healthy", func() (bool, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", etcdPort))
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
}

func (c *cluster) startAPIServer() {
	d := c.dir
	c.run("kube-apiserver", filepath.Join(c.bin, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--bind-address=0.0.0.0", fmt.Sprintf("--secure-port=%d", apiPort),
		"--advertise-address="+c.nodeIP,
		"--client-ca-file="+d+"/ca.crt",
		"--tls-cert-file="+d+"/apiserver.crt", "--tls-private-key-file="+d+"/apiserver.key",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+d+"/sa.pub", "--service-account-signing-key-file="+d+"/sa.key",
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--kubelet-client-certificate="+d+"/admin.crt", "--kubelet-client-key="+d+"/admin.key",
		// The node's name does not resolve here (no DNS for it): reach the
		// kubelet (kubectl logs, exec) by the node's address.
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true", "--profiling=false")
	c.waitUp("kube-apiserver", 120*time.Second, "ready", c.httpsOK(fmt.Sprintf("https://127.0.0.1:%d/readyz", apiPort)))
}

func (c *cluster) startControlPlane() {
	d := c.dir
	c.run("kube-controller-manager", filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+c.kubecfg, "--authentication-kubeconfig="+c.kubecfg, "--authorization-kubeconfig="+c.kubecfg,
		"--service-account-private-key-file="+d+"/sa.key", "--root-ca-file="+d+"/ca.crt",
		"--leader-elect=false", "--bind-address=127.0.0.1")
	c.run("kube-scheduler", filepath.Join(c.bin, "kube-scheduler"),
		"--kubeconfig="+c.kubecfg, "--authentication-kubeconfig="+c.kubecfg, "--authorization-kubeconfig="+c.kubecfg,
		"--leader-elect=false", "--bind-address=127.0.0.1")
	// The default service account appears once the controller manager runs.
	c.waitUp("kube-controller-manager", 60*time.Second, "default service account created", func() (bool, error) {
		_, err := c.kubectl("get", "serviceaccount", "default", "-n", "default")
		return err == nil, err
	})
}

func (c *cluster) startContainerd() {
	d := filepath.Join(c.dir, "containerd")
	cni := c.write("cni/net.d/10-execsnoop.conflist", []byte(fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "execsnoop-test",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "%s/cni/ipam"}
  }]
}`, podSubnet, c.dir)))
	// restrict_oom_score_adj: root on this kind of host may lack
	// CAP_SYS_RESOURCE, so containerd must not lower a pod's OOM score.
	cfg := c.write("containerd/config.toml", []byte(fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "%[2]s"
[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[3]s"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[4]s"
`, d, c.sock, pauseImage, filepath.Dir(cni))))
	c.run("containerd", "containerd", "--config", cfg)
	c.waitUp("containerd", 30*time.Second, "serving", func() (bool, error) {
		_, err := c.ctr("version")
		return err == nil, err
	})
}

// ctr runs containerd's client in the CRI namespace.
func (c *cluster) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", c.sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *cluster) startKubelet() {
	d := c.dir
	cfg := c.write("kubelet.yaml", []byte(fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s/ca.crt}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
healthzBindAddress: 127.0.0.1
`, c.sock, d)))
	c.run("kubelet", filepath.Join(c.bin, "kubelet"),
		"--config="+cfg, "--kubeconfig="+c.kubecfg, "--root-dir="+filepath.Join(d, "kubelet"),
		"--hostname-override="+nodeName, "--node-ip="+c.nodeIP, "--v=1")
	c.waitUp("kubelet", 120*time.Second, "node Ready", func() (bool, error) {
		out, err := c.kubectl("get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return strings.TrimSpace(out) == "True", err
	})
}

func (c *cluster) startKubeProxy() {
	c.run("kube-proxy", filepath.Join(c.bin, "kube-proxy"),
		"--kubeconfig="+c.kubecfg, "--proxy-mode=iptables", "--hostname-override="+nodeName,
		"--cluster-cidr=10.244.0.0/16", "--masquerade-all",
		"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--iptables-localhost-nodeports=false",
		"--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256")
	// The kubernetes Service's rules are in place once its chain exists.
	c.waitUp("kube-proxy", 60*time.Second, "service rules in place", func() (bool, error) {
		out, err := exec.Command("iptables-save", "-t", "nat").Output()
		return bytes.Contains(out, []byte("default/kubernetes:https")), err
	})
}

// kubectl runs kubectl as the cluster admin and returns its stdout.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.runIn(nil, filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig=" + c.kubecfg}, args...)...)
}

func (c *cluster) runIn(stdin []byte, path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(path), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// --- undo -------------------------------------------------------------------

// tunables the kubelet, kube-proxy and the bridge plugin may change.
var sysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max",
}

// host state before the cluster, to put back and to check against.
type hostState struct {
	sysctl map[string]string
	chains map[string]bool // "table/chain" of iptables and ip6tables
	exists map[string]bool // directories the cluster may create
	links  map[string]bool
}

var createdDirs = []string{"/var/lib/kubelet", "/var/lib/cni", "/run/containerd", "/run/netns", "/etc/cni", "/opt/cni", "/var/log/pods", "/var/log/containers"}

func readSysctls() map[string]string {
	m := map[string]string{}
	for _, k := range sysctls {
		if v, err := os.ReadFile("/proc/sys/" + k); err == nil {
			m[k] = strings.TrimSpace(string(v))
		}
	}
	return m
}

func readChains() map[string]bool {
	m := map[string]bool{}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := exec.Command(tool).Output()
		table := ""
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				// ":NAME POLICY [counters]": built-in chains have a policy
				// and appear whenever their table is loaded; they cannot be
				// deleted, so only user chains ("-") count.
				if f := strings.Fields(line[1:]); len(f) >= 2 && f[1] == "-" {
					m[tool+"/"+table+"/"+f[0]] = true
				}
			}
		}
	}
	return m
}

func readLinks() map[string]bool {
	m := map[string]bool{}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		m[i.Name] = true
	}
	return m
}

func (c *cluster) snapshotHost() {
	h := hostState{sysctl: readSysctls(), chains: readChains(), exists: map[string]bool{}, links: readLinks()}
	for _, d := range createdDirs {
		if _, err := os.Stat(d); err == nil {
			h.exists[d] = true
		}
	}
	c.host = h
}

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

// killShims kills containerd shims (and so their containers) started for
// this cluster's containerd, found by its socket in their command lines.
func (c *cluster) killShims() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, []byte(c.sock)) {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
		c.logf("killing leftover shim %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountAll unmounts what the kubelet, containerd and CNI mounted: under
// the state directory and the network namespaces made meanwhile.
func (c *cluster) unmountAll() {
	for range 3 {
		data, _ := os.ReadFile("/proc/self/mountinfo")
		var points []string
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			mp := f[4]
			if strings.HasPrefix(mp, c.dir+"/") || strings.HasPrefix(mp, "/run/netns/cni-") ||
				strings.HasPrefix(mp, "/run/containerd/") || strings.HasPrefix(mp, "/var/lib/kubelet/") {
				points = append(points, mp)
			}
		}
		if len(points) == 0 {
			return
		}
		slices.Reverse(points) // children before parents
		for _, mp := range points {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
				c.logf("unmount %s: %v", mp, err)
			}
		}
	}
}

func (c *cluster) restoreHost() {
	h := c.host
	for k, v := range h.sysctl {
		if now, err := os.ReadFile("/proc/sys/" + k); err == nil && strings.TrimSpace(string(now)) != v {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				c.t.Errorf("restore sysctl %s=%s: %v", k, v, err)
			}
		}
	}
	// Chains left by kube-proxy's cleanup, the kubelet and the bridge
	// plugin (CNI-*): drop the rules that jump to them, then them.
	now := readChains()
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, _ := exec.Command(tool + "-save").Output()
		table := ""
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "*") {
				table = line[1:]
			}
			if !strings.HasPrefix(line, "-A ") {
				continue
			}
			f := strings.Fields(line)
			for i, w := range f {
				if (w == "-j" || w == "-g") && i+1 < len(f) && now[tool+"-save/"+table+"/"+f[i+1]] && !h.chains[tool+"-save/"+table+"/"+f[i+1]] {
					args := append([]string{"-t", table, "-D"}, splitRule(line[3:])...)
					if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
						c.t.Errorf("%s %v: %v: %s", tool, args, err, out)
					}
					break
				}
			}
		}
	}
	for key := range now {
		if h.chains[key] {
			continue
		}
		parts := strings.SplitN(key, "/", 3)
		tool := strings.TrimSuffix(parts[0], "-save")
		_ = exec.Command(tool, "-t", parts[1], "-F", parts[2]).Run()
	}
	for key := range now {
		if h.chains[key] {
			continue
		}
		parts := strings.SplitN(key, "/", 3)
		tool := strings.TrimSuffix(parts[0], "-save")
		if out, err := exec.Command(tool, "-t", parts[1], "-X", parts[2]).CombinedOutput(); err != nil {
			c.t.Errorf("delete chain %s: %v: %s", key, err, out)
		}
	}
	for name := range readLinks() {
		if !h.links[name] && (name == "cni0" || strings.HasPrefix(name, "veth")) {
			_ = exec.Command("ip", "link", "delete", name).Run()
		}
	}
	c.removeCgroups()
	for _, d := range createdDirs {
		if !h.exists[d] {
			if err := os.RemoveAll(d); err != nil {
				c.t.Errorf("remove %s: %v", d, err)
			}
		}
	}
	// Check: nothing of the cluster is left on the host.
	var left []string
	for key := range readChains() {
		if !h.chains[key] {
			left = append(left, "iptables chain "+key)
		}
	}
	for name := range readLinks() {
		if !h.links[name] {
			left = append(left, "link "+name)
		}
	}
	if len(left) > 0 {
		c.t.Errorf("left on the host after teardown: %s", strings.Join(left, ", "))
	}
}

// splitRule splits an iptables-save rule into arguments, keeping quoted
// strings (comments) whole.
func splitRule(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`"(?:[^"\\]|\\.)*"|\S+`).FindAllString(s, -1) {
		if strings.HasPrefix(m, `"`) {
			m = strings.ReplaceAll(m[1:len(m)-1], `\"`, `"`)
		}
		out = append(out, m)
	}
	return out
}

// removeCgroups removes the kubelet's kubepods hierarchy (cgroupfs driver)
// from every mounted cgroup hierarchy, deepest first.
func (c *cluster) removeCgroups() {
	data, _ := os.ReadFile("/proc/self/mounts")
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[2] != "cgroup" && f[2] != "cgroup2") {
			continue
		}
		root := filepath.Join(f[1], "kubepods")
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				c.t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	}
}
