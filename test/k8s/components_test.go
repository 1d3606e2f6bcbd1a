//go:build linux

package k8s

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

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
