//go:build linux

package k8s

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

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
