package testenv

import (
	"os"
	"strconv"
	"time"
)

// TimeoutScaleEnv multiplies the tests' deadlines. test/kernels sets it in
// its virtual machines, whose emulated CPUs (QEMU's TCG) run many times
// slower than the host; elsewhere it is unset and deadlines are as written.
const TimeoutScaleEnv = "EXECSNOOP_TEST_TIMEOUT_SCALE"

// Timeout is d scaled by $EXECSNOOP_TEST_TIMEOUT_SCALE (a number, 1 when
// unset or invalid).
func Timeout(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv(TimeoutScaleEnv), 64); err == nil && f >= 1 {
		return time.Duration(float64(d) * f)
	}
	return d
}
