package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

type row struct {
	prefix          []string // TIME, TIME(s), UID as asked for
	comm            string
	pid, ppid, ret  int
	args, rawFields string
}

// rowRE matches a row after its prefix columns. PCOMM may contain spaces
// (a comm such as "tmux: server"); the rows the tests look for do not.
var rowRE = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\d+)\s+(-?\d+) (.*)$`)

func parseTable(t *testing.T, out string, prefixCols int) (header string, rows []row) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 {
		t.Fatal("no output")
	}
	for _, line := range lines[1:] {
		var prefix []string
		rest := line
		for range prefixCols {
			rest = strings.TrimLeft(rest, " ")
			i := strings.IndexByte(rest, ' ')
			if i < 0 {
				break
			}
			prefix = append(prefix, rest[:i])
			rest = rest[i:]
		}
		m := rowRE.FindStringSubmatch(strings.TrimLeft(rest, " "))
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		ppid, _ := strconv.Atoi(m[3])
		ret, _ := strconv.Atoi(m[4])
		rows = append(rows, row{prefix: prefix, comm: m[1], pid: pid, ppid: ppid, ret: ret, args: m[5], rawFields: line})
	}
	return lines[0], rows
}

func findRow(rows []row, match func(row) bool) (row, bool) {
	for _, r := range rows {
		if match(r) {
			return r, true
		}
	}
	return row{}, false
}

func TestTable(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t, "-x")
	mark := marker()
	sh := runMarked(t, "/bin/sh", "-c", "exit 3", mark)
	missing := "/nonexistent/" + mark
	if err := exec.Command(missing).Run(); err == nil {
		t.Fatalf("%s ran", missing)
	}
	code := c.stop(t)
	assertStoppedCleanly(t, c, code)

	header, rows := parseTable(t, c.stdout.String(), 0)
	if !regexp.MustCompile(`^PCOMM\s+PID\s+PPID\s+RET ARGS$`).MatchString(header) {
		t.Errorf("header %q", header)
	}
	r, ok := findRow(rows, func(r row) bool { return strings.Contains(r.args, mark) && r.ret == 0 })
	if !ok {
		t.Fatalf("no row for the marker %s in:\n%s", mark, c.stdout.String())
	}
	if r.comm != "sh" || r.pid != sh.Process.Pid || r.ppid != os.Getpid() || r.args != "/bin/sh -c exit 3 "+mark {
		t.Errorf("row %q: want sh, pid %d, ppid %d, args /bin/sh -c exit 3 %s", r.rawFields, sh.Process.Pid, os.Getpid(), mark)
	}
	r, ok = findRow(rows, func(r row) bool { return strings.Contains(r.args, missing) })
	if !ok {
		t.Fatalf("no row for the failed exec of %s (-x) in:\n%s", missing, c.stdout.String())
	}
	if r.ret != -2 || r.ppid != os.Getpid() || r.args != missing {
		t.Errorf("failed exec row %q: want RET -2, PPID %d, ARGS %s", r.rawFields, os.Getpid(), missing)
	}
}

func TestTableWithoutFailedExecs(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t)
	mark := marker()
	exec.Command("/nonexistent/" + mark).Run()
	runMarked(t, "/bin/true", mark)
	assertStoppedCleanly(t, c, c.stop(t))
	out := c.stdout.String()
	if !strings.Contains(out, "/bin/true "+mark) {
		t.Errorf("no row for /bin/true %s in:\n%s", mark, out)
	}
	if strings.Contains(out, "/nonexistent/"+mark) {
		t.Errorf("a failed exec was reported without -x:\n%s", out)
	}
}

func TestTableQuoted(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t, "-q")
	mark := marker()
	echo := exec.Command("/bin/echo", mark, "a b", "", "x\ny", "it's")
	echo.Stdout = nil
	if err := echo.Run(); err != nil {
		t.Fatal(err)
	}
	assertStoppedCleanly(t, c, c.stop(t))
	_, rows := parseTable(t, c.stdout.String(), 0)
	r, ok := findRow(rows, func(r row) bool { return strings.Contains(r.args, mark) })
	if !ok {
		t.Fatalf("no row for the marker %s in:\n%s", mark, c.stdout.String())
	}
	if r.pid != echo.Process.Pid || r.comm != "echo" {
		t.Errorf("row %q: want echo, pid %d", r.rawFields, echo.Process.Pid)
	}
	assertShellSplits(t, r.args, echo.Args)
}

func TestTableExitsAndPrefixColumns(t *testing.T) {
	testenv.RequireRoot(t)
	c := startCLI(t, "--exits", "-T", "-t", "-U")
	mark := marker()
	sh := runMarked(t, "/bin/sh", "-c", "exit 3", mark)
	assertStoppedCleanly(t, c, c.stop(t))

	header, rows := parseTable(t, c.stdout.String(), 3)
	if !regexp.MustCompile(`^TIME\s+TIME\(s\)\s+UID\s+PCOMM\s+PID\s+PPID\s+RET ARGS$`).MatchString(header) {
		t.Errorf("header %q", header)
	}
	execRow, ok := findRow(rows, func(r row) bool { return r.pid == sh.Process.Pid && strings.Contains(r.args, mark) })
	if !ok {
		t.Fatalf("no exec row for pid %d in:\n%s", sh.Process.Pid, c.stdout.String())
	}
	if len(execRow.prefix) != 3 || !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(execRow.prefix[0]) ||
		!regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(execRow.prefix[1]) || execRow.prefix[2] != strconv.Itoa(os.Geteuid()) {
		t.Errorf("prefix columns of %q", execRow.rawFields)
	}
	exitRow, ok := findRow(rows, func(r row) bool { return r.pid == sh.Process.Pid && strings.HasPrefix(r.args, "[exit") })
	if !ok {
		t.Fatalf("no exit row for pid %d in:\n%s", sh.Process.Pid, c.stdout.String())
	}
	if exitRow.comm != "sh" || exitRow.ret != 3 || exitRow.ppid != os.Getpid() ||
		!regexp.MustCompile(`^\[exit status 3 after \d+\.\d\ds, cpu \d+\.\d\ds, max rss \d+\.\d MiB\]$`).MatchString(exitRow.args) {
		t.Errorf("exit row %q: want sh, RET 3, [exit status 3 after N.NNs, cpu N.NNs, max rss N.N MiB]", exitRow.rawFields)
	}
}
