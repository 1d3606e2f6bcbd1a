// Command workload is the test pod of test/k8s: a steady exec loop whose
// every exec carries a marker and a sequence number, so the test can tell
// whether any exec is missing at the sink.
//
//	workload loop MARKER INTERVAL   exec "workload tick MARKER N" every INTERVAL
//	workload tick MARKER N          exit at once
//	workload job MARKER STEPS INTERVAL
//	                                a CI job: STEPS steps "workload tick
//	                                MARKER N", one every INTERVAL (the
//	                                first after one), then exit
//	workload storm MARKER N BYTES   N execs of "workload tick MARKER I ARG",
//	                                ARG being BYTES bytes, two at a time
//	                                and as fast as they go, then exit
//	workload drop MARKER PATH       copy itself to PATH (a file written
//	                                into the running container) and run
//	                                "PATH tick MARKER dropped" there,
//	                                then stay (as an intruder's shell
//	                                would) until SIGTERM
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "tick" {
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "job" {
		os.Exit(job(os.Args[2], os.Args[3], os.Args[4]))
	}
	if len(os.Args) == 5 && os.Args[1] == "storm" {
		os.Exit(storm(os.Args[2], os.Args[3], os.Args[4]))
	}
	if len(os.Args) == 4 && os.Args[1] == "drop" {
		os.Exit(drop(os.Args[2], os.Args[3]))
	}
	if len(os.Args) != 4 || os.Args[1] != "loop" {
		fmt.Fprintln(os.Stderr, "usage: workload loop MARKER INTERVAL | workload tick MARKER N | workload job MARKER STEPS INTERVAL | workload storm MARKER N BYTES | workload drop MARKER PATH")
		os.Exit(2)
	}
	marker := os.Args[2]
	interval, err := time.ParseDuration(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload: bad interval:", err)
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		if err := exec.Command(self, "tick", marker, strconv.Itoa(seq)).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "workload: exec %d: %v\n", seq, err)
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// job runs steps children one interval apart, as a CI runner's job runs
// its script's commands; they inherit its TRACEPARENT.
func job(marker, steps, every string) int {
	n, err := strconv.Atoi(steps)
	interval, err2 := time.ParseDuration(every)
	self, err3 := os.Executable()
	if err != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "workload job:", err, err2, err3)
		return 2
	}
	for seq := 1; seq <= n; seq++ {
		time.Sleep(interval) // the job's pace, not synchronisation
		if err := exec.Command(self, "tick", marker, strconv.Itoa(seq)).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "workload job: step %d: %v\n", seq, err)
			return 1
		}
	}
	return 0
}

// storm is the oversized-request case: execs whose records are each about
// BYTES long, as fast as two workers go, so the agent's batches would
// outgrow a request limit that only counted records.
func storm(marker, count, size string) int {
	n, err := strconv.Atoi(count)
	bytes, err2 := strconv.Atoi(size)
	self, err3 := os.Executable()
	if err != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "workload storm:", err, err2, err3)
		return 2
	}
	arg := strings.Repeat("x", bytes)
	next := make(chan int)
	failed := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range next {
				if err := exec.Command(self, "tick", marker, strconv.Itoa(seq), arg).Run(); err != nil {
					failed <- fmt.Errorf("exec %d: %w", seq, err)
					return
				}
			}
		}()
	}
	code := 0
feed:
	for seq := 1; seq <= n; seq++ {
		select {
		case next <- seq:
		case err := <-failed:
			fmt.Fprintln(os.Stderr, "workload storm:", err)
			code = 1
			break feed
		}
	}
	close(next)
	wg.Wait()
	return code
}

// drop is "Drop and execute new binary in container": a binary that was
// not in the image (a copy of this one, so its content hash is known)
// written into the container's writable layer, then run.
func drop(marker, path string) int {
	data, err := os.ReadFile("/proc/self/exe")
	if err == nil {
		err = os.WriteFile(path, data, 0o755)
	}
	if err == nil {
		err = exec.Command(path, "tick", marker, "dropped").Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workload drop:", err)
		return 1
	}
	// As pid 1 of its container it would ignore SIGTERM without a handler.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return 0
}
