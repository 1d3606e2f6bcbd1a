//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Context switches of a tracer process: the sum over its threads of
// voluntary_ctxt_switches and nonvoluntary_ctxt_switches in
// /proc/PID/task/TID/status. /proc/PID/status has only the main thread's;
// the counts of threads that exit are kept only in the process's rusage,
// which /proc does not show for another process. So a storm's switches
// are those of the threads alive at its end (a thread born during the
// storm counts from zero), and the threads that ended are counted apart:
// if any did, the number is low by theirs.
type switches map[int]int64 // by thread id

func threadSwitches(pid int) switches {
	out := switches{}
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, dir := range dirs {
		tid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue // the thread ended between the listing and the read
		}
		var n int64
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := bytes.CutPrefix(sc.Bytes(), []byte(key)); ok {
					c, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
					n += c
				}
			}
		}
		out[tid] = n
	}
	return out
}

// since returns the switches made after before by the threads alive now,
// and how many of before's threads have ended (their switches are lost).
func (s switches) since(before switches) (n int64, ended int) {
	for tid, c := range s {
		n += c - before[tid]
	}
	for tid := range before {
		if _, ok := s[tid]; !ok {
			ended++
		}
	}
	return n, ended
}
