// Command execstorm generates an exec storm: workers fork and exec a tiny
// program, each with a unique marker argument, a fixed number of times, and
// it reports the rate. It is the load of `make bench`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otelexecsnoop/execsnoop/internal/testenv"
)

func main() {
	workers := flag.Int("workers", 2, "concurrent fork+exec loops")
	count := flag.Int("n", 10000, "execs in all")
	program := flag.String("program", "/bin/true", "the program each exec runs")
	marker := flag.String("marker", fmt.Sprintf("storm-%d", time.Now().UnixNano()), "prefix of each exec's marker argument (MARKER-I)")
	envBytes := flag.Int("env-bytes", 0, "give each exec an environment of about this many bytes (variables of 100 bytes), as a CI job's commands have")
	argBytes := flag.Int("arg-bytes", 0, "give each exec a second argument of this many bytes, as long compiler command lines are")
	syscalls := flag.Int("syscalls", 0, "instead of a storm, time this many getppid(2) calls: the cost every syscall pays while a tracer hooks syscall exits")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: execstorm [-workers W] [-n N] [-program PATH] [-marker PREFIX] [-env-bytes B] [-arg-bytes B] | -syscalls N\n\n"+
			"Runs PATH N times from W workers, as PATH PREFIX-I, and prints one JSON line:\n"+
			"{\"execs\":N,\"failed\":F,\"seconds\":S,\"rate\":R,\"marker\":PREFIX}\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *syscalls > 0 {
		timeSyscalls(*syscalls)
		return
	}
	if *workers < 1 || *count < 1 {
		fmt.Fprintln(os.Stderr, "execstorm: -workers and -n must be at least 1")
		os.Exit(2)
	}
	if _, err := os.Stat(*program); err != nil {
		fmt.Fprintln(os.Stderr, "execstorm:", err)
		os.Exit(2)
	}

	env := testenv.FillerEnv("STORM_VAR_", *envBytes)
	var extra []string
	if *argBytes > 0 {
		extra = []string{strings.Repeat("a", *argBytes)}
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(*count) {
					return
				}
				if err := runOnce(*program, append([]string{*program, fmt.Sprintf("%s-%d", *marker, i)}, extra...), env); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"execs": *count, "failed": failed.Load(), "seconds": elapsed,
		"rate": float64(*count) / elapsed, "marker": *marker,
	})
}

func timeSyscalls(n int) {
	runtime.LockOSThread()
	start := time.Now()
	for range n {
		syscall.Getppid()
	}
	elapsed := time.Since(start)
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"syscalls": n, "ns_per_syscall": float64(elapsed.Nanoseconds()) / float64(n),
	})
}

// runOnce forks, execs and reaps one child: no goroutines or pipes per
// child, unlike os/exec, so the generator itself stays cheap.
func runOnce(program string, argv, env []string) error {
	pid, err := syscall.ForkExec(program, argv, &syscall.ProcAttr{Env: env})
	if err != nil {
		return err
	}
	var status syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &status, 0, nil); err != nil {
		return err
	}
	if !status.Exited() || status.ExitStatus() != 0 {
		return fmt.Errorf("%s exited with %v", program, status)
	}
	return nil
}
