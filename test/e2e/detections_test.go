//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelexecsnoop/execsnoop/internal/cgroup"
	"github.com/otelexecsnoop/execsnoop/internal/collectortest"
	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

// receiverREADME holds the detection queries, each in a fenced block
// "```logsql NAME".
const receiverREADME = "../../receiver/execsnoopreceiver/README.md"

// readmeQueries are the README's named LogsQL blocks.
func readmeQueries(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(receiverREADME)
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{}
	for _, m := range regexp.MustCompile("(?ms)^```logsql ([a-z0-9-]+)\n(.*?)\n```").FindAllStringSubmatch(string(raw), -1) {
		if _, dup := queries[m[1]]; dup {
			t.Errorf("%s has two logsql blocks named %s", receiverREADME, m[1])
		}
		queries[m[1]] = m[2]
	}
	return queries
}

// The planted cases: each runs in a cgroup of its own below the test's,
// which names it in every record (process.linux.cgroup). In a container
// case the cgroup is named as Podman names a container's
// (libpod-<64 hex>.scope), so the records carry container.id, and what it
// runs comes from an overlay mount, as a container's image does.
const (
	upperInContainer  = "upper-in-container"  // a binary written into the container after it started
	imageInContainer  = "image-in-container"  // an image (lower-layer) binary run in the container
	upperOnHost       = "upper-on-host"       // a new (upper-layer) binary run outside any container
	memfdExec         = "memfd"               // fileless: an exec of a memfd_create file
	deletedExec       = "deleted"             // an exec of a named file unlinked before its exec
	shellTTYContainer = "shell-tty-container" // an interactive shell in the container (script -qc: a pty)
	bbTTYContainer    = "busybox-tty-container"
	shellContainer    = "shell-container"  // a shell without a terminal in the container
	shellTTYHost      = "shell-tty-host"   // an interactive shell outside any container
	setuidAsNobody    = "setuid-as-nobody" // a set-user-ID root copy of id run by uid 65534
	setuidAsRoot      = "setuid-as-root"   // the same run by root: it gains nothing
	plainAsNobody     = "plain-as-nobody"  // id itself run by uid 65534
	belowSSHD         = "below-sshd"       // a command whose grandparent's executable is named sshd
	sshdInArgs        = "sshd-in-args"     // a command with sshd only in its arguments
	sentinel          = "sentinel"         // planted last: once it is stored, the rest is
)

// detections is what each README query must find among the planted cases,
// exactly.
var detections = map[string][]string{
	"drop-and-execute-new-binary":  {upperInContainer},
	"fileless-execution-via-memfd": {memfdExec},
	"terminal-shell-in-container":  {shellTTYContainer, bbTTYContainer},
	"exec-gained-privileges":       {setuidAsNobody},
	"below-an-ssh-login":           {belowSSHD},
}

var containerCases = []string{upperInContainer, imageInContainer, shellTTYContainer, bbTTYContainer, shellContainer}

// TestDetectionsInVictoriaLogs plants each detection's case and look-alikes
// that must not match, sends their records from the built collector to
// VictoriaLogs over OTLP/HTTP, and runs the receiver README's queries
// through its query API: each finds its cases and nothing else.
func TestDetectionsInVictoriaLogs(t *testing.T) {
	queries := readmeQueries(t)
	for name := range detections {
		if queries[name] == "" {
			t.Errorf("%s has no ```logsql %s block", receiverREADME, name)
		}
	}
	for name := range queries {
		if detections[name] == nil {
			t.Errorf("%s: the logsql block %s has no planted case in this test", receiverREADME, name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, tool := range []string{"script", "setpriv", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed (make deps installs it): %v", tool, err)
			}
			t.Skipf("%s is not installed (make deps installs it)", tool)
		}
	}
	bin := collectortest.Binary(t)
	vl := startVictoriaLogs(t)
	cgroups := plantCgroups(t)
	merged := containerImage(t)
	start := time.Now()
	collectortest.Start(t, bin, "source", collectortest.WriteConfig(t, "source",
		vlSourceConfig(vl.otlpEndpoint(), "filters:\n  cgroup: "+cgroups.root+cgroups.base+"\n")))

	run := func(name string, cmd *exec.Cmd) {
		t.Helper()
		cg := cgroups.open(t, name)
		defer cg.Close()
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		// A new session: no controlling terminal, whatever runs the test.
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %v: %s", name, cmd.Args, err, out)
		}
	}
	// script runs $SHELL -c CMD on a new pty: the shell is interactive.
	onPTY := func(shell string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(merged, "script"), "-qec", ": on a pty", "/dev/null")
		cmd.Env = append(os.Environ(), "SHELL="+shell)
		return cmd
	}
	asNobody := func(path string) *exec.Cmd {
		return exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", path)
	}
	run(upperInContainer, exec.Command(filepath.Join(merged, "dropped-bin")))
	run(imageInContainer, exec.Command(filepath.Join(merged, "image-bin")))
	run(upperOnHost, exec.Command(filepath.Join(merged, "dropped-bin")))
	run(memfdExec, fdExec(t, memfdCopy(t, "/bin/true")))
	run(deletedExec, fdExec(t, unlinkedCopy(t, "/bin/true")))
	run(shellTTYContainer, onPTY(filepath.Join(merged, "sh")))
	run(bbTTYContainer, onPTY(filepath.Join(merged, "alpine", "sh")))
	run(shellContainer, exec.Command(filepath.Join(merged, "sh"), "-c", ": no terminal"))
	hostScript := exec.Command("script", "-qec", ": on a pty", "/dev/null")
	hostScript.Env = append(os.Environ(), "SHELL=/bin/sh")
	run(shellTTYHost, hostScript)
	setuid := filepath.Join(testenv.SharedDir(t), "id-setuid")
	testenv.RootOwnedCopy(t, "/usr/bin/id", setuid, 0o755|os.ModeSetuid)
	run(setuidAsNobody, asNobody(setuid))
	run(setuidAsRoot, exec.Command(setuid))
	run(plainAsNobody, asNobody("/usr/bin/id"))
	// A shell named sshd forks (the ": " keeps it from exec'ing in place)
	// a shell that runs true: sshd is true's grandparent.
	sshd := filepath.Join(testenv.SharedDir(t), "sshd")
	testenv.CopyFile(t, "/bin/sh", sshd, 0o755)
	run(belowSSHD, exec.Command(sshd, "-c", `/bin/sh -c '/bin/true below; :'; :`))
	run(sshdInArgs, exec.Command("/bin/true", "sshd"))
	run(sentinel, exec.Command("/bin/true", "sentinel two"))

	// The receiver sends its batches in order and the exporter has no
	// queue: once the sentinel's record is stored, every earlier one is.
	deadline := time.Now().Add(testenv.Timeout(30 * time.Second))
	var rows []map[string]string
	for len(rows) == 0 {
		rows = vl.query(t, `event_name:="process.exec" AND `+cgroupFilter(cgroups.path(sentinel)), start, time.Now())
		if len(rows) == 0 && time.Now().After(deadline) {
			t.Fatalf("the sentinel's record did not reach VictoriaLogs")
		}
		time.Sleep(100 * time.Millisecond)
	}
	end := time.Now()
	// What the README says of the stored fields: the attributes' names,
	// booleans as true and false, arrays as JSON.
	for field, want := range map[string]string{
		"process.executable.name":    "true",
		"process.command_args":       `["/bin/true","sentinel two"]`,
		"execsnoop.executable.memfd": "false",
		"process.user.id":            "0",
	} {
		if got := rows[0][field]; got != want {
			t.Errorf("the sentinel's %s is %q in VictoriaLogs, want %q: %v", field, got, want, rows[0])
		}
	}
	// Every case left exec records, and those of a container carry its id
	// (a resource attribute) and the others none.
	all := vl.query(t, `"process.linux.cgroup":="0::`+cgroups.base+`/"*`, start, end)
	for _, name := range cgroups.names {
		var execs int
		for _, row := range all {
			if row["process.linux.cgroup"] != "0::"+cgroups.path(name) || row["event_name"] != "process.exec" {
				continue
			}
			execs++
			if want := cgroups.containerID[name]; row["container.id"] != want {
				t.Errorf("%s: container.id %q, want %q: %v", name, row["container.id"], want, row)
			}
		}
		if execs == 0 {
			t.Errorf("%s left no exec record in VictoriaLogs", name)
		}
	}

	for name, want := range detections {
		// The README's query, as a user runs it, restricted to this
		// test's time and cgroups.
		q := queries[name] + " | filter " + `"process.linux.cgroup":="0::` + cgroups.base + `/"*`
		var got []string
		for _, row := range vl.query(t, q, start, end) {
			c := cgroups.caseOf(row["process.linux.cgroup"])
			if !slices.Contains(got, c) {
				got = append(got, c)
			}
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("the README's %s query found %v, want %v\nquery: %s", name, got, want, queries[name])
		}
	}
	if t.Failed() {
		for _, row := range all {
			t.Logf("%s: %s", cgroups.caseOf(row["process.linux.cgroup"]), summary(row))
		}
	}
}

// summary is what the queries look at in a stored record.
func summary(row map[string]string) string {
	var b strings.Builder
	for _, f := range []string{"event_name", "container.id", "process.executable.path", "process.executable.name", "thread.name",
		"execsnoop.executable.upper_layer", "execsnoop.executable.memfd", "execsnoop.executable.deleted",
		"process.interactive", "execsnoop.privileges.gained", "process.user.id", "process.real_user.id"} {
		if v, ok := row[f]; ok {
			fmt.Fprintf(&b, " %s=%s", f, v)
		}
	}
	return b.String()
}

func cgroupFilter(path string) string { return `"process.linux.cgroup":="0::` + path + `"` }

// caseCgroups are the test's cgroup v2 directories: base, and one below
// it for each case.
type caseCgroups struct {
	root, base  string // base is relative to root, as records name it
	names       []string
	containerID map[string]string
}

func (c *caseCgroups) path(name string) string {
	if id := c.containerID[name]; id != "" {
		return c.base + "/" + name + "/libpod-" + id + ".scope"
	}
	return c.base + "/" + name
}

// caseOf names the case of a record's process.linux.cgroup.
func (c *caseCgroups) caseOf(cg string) string {
	for _, name := range c.names {
		if cg == "0::"+c.path(name) {
			return name
		}
	}
	return cg
}

func (c *caseCgroups) open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(c.root + c.path(name))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// plantCgroups makes the cases' cgroups and removes them when the test
// ends (after its processes are gone).
func plantCgroups(t *testing.T) *caseCgroups {
	t.Helper()
	root, err := cgroup.V2Root()
	if err != nil {
		t.Fatal(err)
	}
	c := &caseCgroups{root: root, base: fmt.Sprintf("/execsnoop-e2e-detect-%d", os.Getpid()), containerID: map[string]string{}}
	for _, name := range []string{upperInContainer, imageInContainer, upperOnHost, memfdExec, deletedExec,
		shellTTYContainer, bbTTYContainer, shellContainer, shellTTYHost, setuidAsNobody, setuidAsRoot, plainAsNobody, belowSSHD, sshdInArgs, sentinel} {
		c.names = append(c.names, name)
		if slices.Contains(containerCases, name) {
			sum := sha256.Sum256(fmt.Appendf(nil, "%s %d", name, time.Now().UnixNano()))
			c.containerID[name] = hex.EncodeToString(sum[:])
		}
	}
	var made []string
	t.Cleanup(func() {
		for _, d := range slices.Backward(made) {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing the cgroup %s: %v", d, err)
			}
		}
	})
	mkdir := func(d string) {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, d)
	}
	mkdir(root + c.base)
	for _, name := range c.names {
		mkdir(root + c.base + "/" + name)
		if c.containerID[name] != "" {
			mkdir(root + c.path(name))
		}
	}
	return c
}

// containerImage is an overlay mount like a container's root: its lower
// layer (the image) holds a shell (dash as sh; busybox as alpine/sh),
// script and image-bin, and dropped-bin is written into it after the mount,
// so it is in the upper layer. Everything a container case runs comes
// from here, so that no host file on an overlay of its own can match.
func containerImage(t *testing.T) string {
	t.Helper()
	resolved := func(p string) string {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	_, merged := testenv.Overlay(t, func(lower string) {
		testenv.CopyFile(t, resolved("/bin/true"), filepath.Join(lower, "image-bin"), 0o755)
		testenv.CopyFile(t, resolved("/bin/sh"), filepath.Join(lower, "sh"), 0o755)
		testenv.CopyFile(t, resolved("/usr/bin/script"), filepath.Join(lower, "script"), 0o755)
		testenv.CopyFile(t, resolved("/usr/bin/busybox"), filepath.Join(lower, "busybox"), 0o755)
		if err := os.Mkdir(filepath.Join(lower, "alpine"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../busybox", filepath.Join(lower, "alpine", "sh")); err != nil {
			t.Fatal(err)
		}
	})
	testenv.CopyFile(t, "/bin/true", filepath.Join(merged, "dropped-bin"), 0o755)
	return merged
}

// fdExec runs the file open at f as the child's fd 3, through
// /proc/self/fd/3: the kernel opens that file, whatever its name.
func fdExec(t *testing.T, f *os.File) *exec.Cmd {
	t.Helper()
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command("/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	return cmd
}

// memfdCopy is a memfd_create file holding a copy of src.
func memfdCopy(t *testing.T, src string) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("payload", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "memfd:payload")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		t.Fatal(err)
	}
	return f
}

// unlinkedCopy is a copy of src, open for reading, whose name is gone.
func unlinkedCopy(t *testing.T, src string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gone")
	testenv.CopyFile(t, src, path, 0o755)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	return f
}
