// Package result is what a guest of test/kernels reports to the harness:
// one JSON line after Marker on the serial console.
package result

// Marker starts the guest's result line on the console; End follows it
// once everything is written.
const (
	Marker = "KTEST-RESULT "
	End    = "KTEST-END"
)

// Result is everything one guest measured.
type Result struct {
	Kernel string `json:"kernel"` // uname -r in the guest

	// Probe is the line of `execsnoop --probe-report` (a JSON object) or
	// "" with ProbeError saying why not.
	Probe      map[string]any `json:"probe,omitempty"`
	ProbeError string         `json:"probe_error,omitempty"`

	BPF Tests `json:"bpf_tests"` // the bpf package's test binary
	CLI Tests `json:"cli_tests"` // the CLI's end-to-end tests

	Bench Bench `json:"bench"`

	Collector Collector `json:"collector"` // the image's, in one guest

	Errors []string `json:"errors,omitempty"` // the guest's own failures (mounts...)
}

// Tests counts the top-level tests of one `go test -c` binary run with -v.
type Tests struct {
	Ran     bool     `json:"ran"`
	Pass    int      `json:"pass"`
	Fail    int      `json:"fail"`
	Skip    int      `json:"skip"`
	Failed  []string `json:"failed,omitempty"`
	Skipped []string `json:"skipped,omitempty"` // "TestName: reason"
	OK      bool     `json:"ok"`                // exit status 0 and PASS printed
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"seconds"`
}

// Bench is getppid(2)'s cost, the fastest run's ns per call, without a tracer, with
// `execsnoop -x` (the failed-exec hook the probe picks) and with
// `execsnoop -x --failed-exec-hook=sys_exit`. An error says why a row
// could not be measured.
type Bench struct {
	Syscalls     int     `json:"syscalls"` // calls per run
	Runs         int     `json:"runs"`     // runs per configuration
	NoneNs       float64 `json:"none_ns"`
	HookNs       float64 `json:"hook_ns,omitempty"`
	HookError    string  `json:"hook_error,omitempty"`
	SysExitNs    float64 `json:"sys_exit_ns,omitempty"`
	SysExitError string  `json:"sys_exit_error,omitempty"`
}

// Collector is the image's collector started in the guest: whether an
// exec of a marked command reached its file exporter.
type Collector struct {
	Ran           bool    `json:"ran"`
	Platform      string  `json:"platform,omitempty"` // the image's variant, linux/arm64
	OK            bool    `json:"ok"`
	Error         string  `json:"error,omitempty"` // with the tail of its stderr
	ReadySeconds  float64 `json:"ready_seconds"`   // start to "Everything is ready"
	RecordSeconds float64 `json:"record_seconds"`  // the exec to the record in the file
}
