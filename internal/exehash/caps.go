package exehash

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// capSysPtrace is CAP_SYS_PTRACE's bit in the capability sets.
const capSysPtrace = 19

// CanReadOthers reports whether this process may open /proc/PID/exe of
// another user's process: that takes ptrace read access, i.e.
// CAP_SYS_PTRACE in the effective set (root has it). Without it such a
// process's file is read through its path, which works only for a file
// this process may read that still exists: others are Unreadable.
func CanReadOthers() (bool, error) { return hasCap("/proc/self/status", capSysPtrace) }

func hasCap(status string, bit uint) (bool, error) {
	f, err := os.Open(status)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			set, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, err
			}
			return set&(1<<bit) != 0, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, os.ErrNotExist
}
