// Package tracectx parses the W3C trace context a process finds in its
// environment (TRACEPARENT, TRACESTATE), as the OpenTelemetry specification
// "Environment Variables as Context Propagation Carriers" describes and CI
// systems (Jenkins, Buildkite, Concourse, BuildKit, otel-cli) set it.
package tracectx

import (
	"errors"
	"strings"
)

// Parent is a valid traceparent: the remote span a process's span is a
// child of.
type Parent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Why a traceparent is refused.
var (
	ErrFormat  = errors.New("not version-format-traceid-parentid-flags in lower-case hex")
	ErrVersion = errors.New("version ff is invalid")
	ErrZeroID  = errors.New("all-zero trace id or parent id")
)

// ParseTraceparent parses a W3C Trace Context traceparent. Version 00 must
// be exactly 55 characters; a later version may carry more after a '-',
// and its first four fields are read as version 00's (as the
// recommendation asks of parsers).
func ParseTraceparent(s string) (Parent, error) {
	var p Parent
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return p, ErrFormat
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return p, ErrFormat
	}
	var version, flags [1]byte
	if !decodeHex(version[:], s[0:2]) || !decodeHex(p.TraceID[:], s[3:35]) ||
		!decodeHex(p.SpanID[:], s[36:52]) || !decodeHex(flags[:], s[53:55]) {
		return p, ErrFormat
	}
	p.Flags = flags[0]
	if version[0] == 0xff {
		return p, ErrVersion
	}
	if p.TraceID == ([16]byte{}) || p.SpanID == ([8]byte{}) {
		return p, ErrZeroID
	}
	return p, nil
}

// decodeHex decodes lower-case hex only, as W3C requires.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := nibble(s[2*i])
		lo, ok2 := nibble(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// maxTracestateMembers is W3C's limit of list members.
const maxTracestateMembers = 32

// CleanTracestate returns the tracestate to propagate: truncated (the
// kernel cut it at 512 bytes) loses its last, incomplete member; empty
// members are dropped, and at most 32 are kept. Members are otherwise
// passed on as they are.
func CleanTracestate(s string, truncated bool) string {
	if truncated {
		i := strings.LastIndexByte(s, ',')
		if i < 0 {
			return ""
		}
		s = s[:i]
	}
	if !strings.Contains(s, ",,") && !strings.HasPrefix(s, ",") && !strings.HasSuffix(s, ",") &&
		strings.Count(s, ",") < maxTracestateMembers && !strings.ContainsAny(s, " \t") {
		return s
	}
	var members []string
	for _, m := range strings.Split(s, ",") {
		m = strings.Trim(m, " \t")
		if m != "" && len(members) < maxTracestateMembers {
			members = append(members, m)
		}
	}
	return strings.Join(members, ",")
}
