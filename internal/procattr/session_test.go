package procattr

import (
	"testing"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

func TestTTYOf(t *testing.T) {
	for _, c := range []struct {
		name  string
		index int32
		want  string
	}{{"pts3", 3, "pts/3"}, {"tty1", 1, "tty1"}, {"ttyS0", 0, "ttyS0"}, {"console", 1, "console"}, {"", -1, ""}} {
		if got := TTYOf(&bpf.Event{TTYName: c.name, TTYIndex: c.index}); got != c.want {
			t.Errorf("%s/%d: %q, want %q", c.name, c.index, got, c.want)
		}
	}
}
