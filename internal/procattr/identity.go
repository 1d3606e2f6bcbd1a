package procattr

import "github.com/otelexecsnoop/execsnoop/internal/exehash"

// The executable's content identity (internal/exehash), on exec records
// and process spans when executable.hash.enabled is on.
const (
	ExecutableHashSHA256  = "execsnoop.executable.hash.sha256"    // lowercase hex of the whole file
	ExecutableHashMissing = "execsnoop.executable.hash.missing"   // why there is no sha256: too_large, gone, changed, unreadable, timeout
	ExecutableBuildIDGNU  = "process.executable.build_id.gnu"     // semconv: the GNU build id, lowercase hex
	ExecutableBuildIDGo   = "process.executable.build_id.go"      // semconv: the Go build id
	ExecutableBuildIDHTL  = "process.executable.build_id.htlhash" // semconv: the eBPF profiler's file id
)

// IdentityAttributes is how many attributes Identity emits at most (the
// sha256 or the reason it is missing, and three ids).
const IdentityAttributes = 4

// Identity sends the executable's identity to s: each id the file has, and
// the sha256 or why it is missing.
func Identity(id *exehash.Identity, s Sink) {
	if id.SHA256 != "" {
		s.Str(ExecutableHashSHA256, id.SHA256)
	} else if id.Missing != exehash.ReasonNone {
		s.Str(ExecutableHashMissing, id.Missing.String())
	}
	if id.GNU != "" {
		s.Str(ExecutableBuildIDGNU, id.GNU)
	}
	if id.Go != "" {
		s.Str(ExecutableBuildIDGo, EscapeInvalidUTF8(id.Go))
	}
	if id.HTLHash != "" {
		s.Str(ExecutableBuildIDHTL, id.HTLHash)
	}
}
