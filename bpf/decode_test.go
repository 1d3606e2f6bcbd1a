//go:build 386 || amd64 || arm64

package bpf

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func structBytes[T any](v *T) []byte {
	return slices.Clone(unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v)))
}

// execRecord builds a record the way the BPF program lays it out.
func execRecord(args []string, filename string, retval int32) []byte {
	var blob []byte
	for _, a := range args {
		blob = append(append(blob, a...), 0)
	}
	e := execsnoopExecEvent{Retval: retval, Argc: uint32(len(args)), Syscall: 1,
		ArgsSize: uint16(len(blob)), FilenameSize: uint16(len(filename) + 1)}
	e.Hdr.Kind = uint32(KindExec)
	e.Hdr.Pid, e.Hdr.Tid, e.Hdr.Ppid = 42, 42, 1
	e.Hdr.BootNs = 1e9
	e.Hdr.Uid, e.Hdr.Gid = 0, 5
	e.RealUid, e.SavedUid, e.RealGid, e.SavedGid = 65534, 7, 65533, 8
	e.CapEffective, e.Privileges, e.StartBootNs = 1<<13, uint32(PrivSetuid|PrivFileCaps), 4e8
	for i, c := range []byte("true") {
		e.Hdr.Comm[i] = int8(c)
	}
	rec := append(structBytes(&e), blob...)
	return append(append(rec, filename...), 0)
}

func exitRecord(code uint32) []byte {
	e := execsnoopExitEvent{ExitCode: code, StartBootNs: 5e8}
	e.Hdr.Kind = uint32(KindExit)
	e.Hdr.Pid = 42
	e.Hdr.BootNs = 1e9
	return structBytes(&e)
}

func TestDecodeExec(t *testing.T) {
	d := newDecoder(DefaultMaxArgs, bootClock{})
	args := []string{"/bin/echo", "", "a b", "\xff", ""}
	var ev Event
	if err := d.decode(execRecord(args, "/bin/echo", -2), &ev); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.Args, args) || ev.Filename != "/bin/echo" || ev.Retval != -2 || ev.Comm != "true" || ev.PID != 42 {
		t.Fatalf("decoded %+v", ev)
	}
	if ev.UID != 0 || ev.GID != 5 || ev.RealUID != 65534 || ev.SavedUID != 7 || ev.RealGID != 65533 || ev.SavedGID != 8 ||
		ev.CapEffective != 1<<13 || ev.Privileges != PrivSetuid|PrivFileCaps || ev.StartTime.UnixNano() != 4e8 {
		t.Fatalf("decoded credentials %+v", ev)
	}
	if err := d.decode(exitRecord(9), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindExit || ev.Signal() != 9 || ev.ShellExitCode() != 137 || ev.Lifetime() != 500_000_000 || len(ev.Args) != 0 {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestDecodeMalformed(t *testing.T) {
	d := newDecoder(DefaultMaxArgs, bootClock{})
	good := execRecord([]string{"x"}, "/x", 0)
	bad := slices.Clone(good)
	bad[unsafe.Offsetof(execsnoopExecEvent{}.ArgsSize)] = 0xff // claims more data than it has
	for name, raw := range map[string][]byte{
		"empty":          nil,
		"short header":   good[:10],
		"short exec":     good[:unsafe.Sizeof(execsnoopEventHeader{})+2],
		"sizes too big":  bad,
		"unknown kind":   append([]byte{}, structBytes(&execsnoopEventHeader{Kind: 99})...),
		"truncated exit": exitRecord(0)[:60],
	} {
		var ev Event
		if err := d.decode(raw, &ev); !errors.Is(err, ErrMalformedRecord) {
			t.Errorf("%s: %v, want ErrMalformedRecord", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(execRecord([]string{"/bin/sh", "-c", "exit 7"}, "/bin/sh", 0))
	f.Add(execRecord([]string{"", "", ""}, "", -13))
	f.Add(execRecord([]string{strings.Repeat("z", 300)}, "/z", 0)[:200])
	f.Add(exitRecord(0x8b))
	f.Add([]byte{1, 2, 3})
	d := newDecoder(8, bootClock{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev Event
		if err := d.decode(raw, &ev); err != nil {
			if !errors.Is(err, ErrMalformedRecord) {
				t.Fatalf("error %v does not wrap ErrMalformedRecord", err)
			}
			return
		}
		if len(ev.Args) > 8 {
			t.Fatalf("%d args kept, limit 8", len(ev.Args))
		}
	})
}

func BenchmarkDecodeExec(b *testing.B) {
	raw := execRecord([]string{"/usr/bin/git", "-C", "/src/project", "status", "--porcelain"}, "/usr/bin/git", 0)
	d := newDecoder(DefaultMaxArgs, bootClock{})
	var ev Event
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := d.decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeExit(b *testing.B) {
	raw := exitRecord(0)
	d := newDecoder(DefaultMaxArgs, bootClock{})
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}
