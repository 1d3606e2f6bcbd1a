package redact

import (
	"slices"
	"strings"
	"testing"
)

func TestBuiltinRules(t *testing.T) {
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want []string }{
		{[]string{"tool", "--password=hunter2", "https://u:secret@host/x"}, []string{"tool", "--password=****", "https://u:****@host/x"}},
		{[]string{"mysql", "--password", "hunter2", "-u", "root"}, []string{"mysql", "--password", "****", "-u", "root"}},
		{[]string{"gh", "--token", "abc"}, []string{"gh", "--token", "****"}},
		{[]string{"env", "PASSWORD=x", "DB_PASSWORD=y", "AWS_SECRET_ACCESS_KEY=z", "HOME=/root"}, []string{"env", "PASSWORD=****", "DB_PASSWORD=****", "AWS_SECRET_ACCESS_KEY=****", "HOME=/root"}},
		{[]string{"curl", "-H", "Authorization: Bearer eyJhbGciOi.xyz", "https://api"}, []string{"curl", "-H", "Authorization: Bearer ****", "https://api"}},
		{[]string{"aws", "AKIAIOSFODNN7EXAMPLE"}, []string{"aws", "****"}},
		{[]string{"git", "clone", "https://x:ghp_" + strings.Repeat("a", 36) + "@github.com/o/r"}, []string{"git", "clone", "https://x:****@github.com/o/r"}},
		{[]string{"echo", "ghp_" + strings.Repeat("B", 36)}, []string{"echo", "****"}},
		{[]string{"maps", "key=AIza" + strings.Repeat("c", 35)}, []string{"maps", "key=****"}},
		{[]string{"ls", "-l", "/tmp", "--color=auto"}, []string{"ls", "-l", "/tmp", "--color=auto"}},
	} {
		got, changed := r.Args(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Args(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if changed != !slices.Equal(tc.in, tc.want) {
			t.Errorf("Args(%q) changed = %v", tc.in, changed)
		}
	}
}

func TestExtraPatterns(t *testing.T) {
	r, err := New([]string{`internal-[0-9]+`, `id=(?P<v>\w+)`})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.Args([]string{"x", "internal-1234", "id=abc"})
	if !slices.Equal(got, []string{"x", "****", "id=****"}) {
		t.Fatalf("got %q", got)
	}
	if _, err := New([]string{"("}); err == nil {
		t.Fatal("a bad pattern was accepted")
	}
}

func TestNoSecretNoAllocation(t *testing.T) {
	r, _ := New(nil)
	args := []string{"/usr/bin/git", "-C", "/src", "status"}
	allocs := testing.AllocsPerRun(100, func() { r.Args(args) })
	if allocs != 0 {
		t.Fatalf("%v allocations for argv without secrets", allocs)
	}
}

func FuzzArgs(f *testing.F) {
	f.Add("--password=x", "y")
	f.Add("https://a:b@c", "\xff")
	r, _ := New(nil)
	f.Fuzz(func(t *testing.T, a, b string) {
		out, _ := r.Args([]string{a, b})
		if len(out) != 2 {
			t.Fatalf("%d args out of 2", len(out))
		}
	})
}

func BenchmarkArgsNoSecret(b *testing.B) {
	r, _ := New(nil)
	args := []string{"/usr/bin/git", "-C", "/src/project", "status", "--porcelain"}
	b.ReportAllocs()
	for b.Loop() {
		r.Args(args)
	}
}
