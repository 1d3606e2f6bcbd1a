package tracectx

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p, err := ParseTraceparent(valid)
	if err != nil || hex.EncodeToString(p.TraceID[:]) != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		hex.EncodeToString(p.SpanID[:]) != "00f067aa0ba902b7" || p.Flags != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParseTraceparent("01" + valid[2:] + "-more"); err != nil {
		t.Errorf("a later version with more fields: %v", err)
	}
	for in, want := range map[string]error{
		"":                     ErrFormat,
		"00-zz":                ErrFormat,
		strings.ToUpper(valid): ErrFormat,
		valid + "-x":           ErrFormat, // version 00 is exactly 55 characters
		"01" + valid[2:] + "x": ErrFormat,
		"ff" + valid[2:]:       ErrVersion,
		valid[:3] + strings.Repeat("0", 32) + valid[35:]:  ErrZeroID,
		valid[:36] + strings.Repeat("0", 16) + valid[52:]: ErrZeroID,
		strings.Replace(valid, "-", "_", 1):               ErrFormat,
		valid[:54] + "g":                                  ErrFormat,
	} {
		if _, err := ParseTraceparent(in); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
}

func TestCleanTracestate(t *testing.T) {
	for _, c := range []struct {
		in        string
		truncated bool
		want      string
	}{
		{"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", false, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
		{"a=1,b=2,c=partia", true, "a=1,b=2"},
		{"a=partia", true, ""},
		{"a=1,, b=2 ,", false, "a=1,b=2"},
	} {
		if got := CleanTracestate(c.in, c.truncated); got != c.want {
			t.Errorf("%q (truncated %v): %q, want %q", c.in, c.truncated, got, c.want)
		}
	}
}
