package exehash

import (
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkColdHash reads and identifies a 16 MiB file each time, as a
// cache miss does (page cache warm): ms/MiB is the cost of a cold hash.
func BenchmarkColdHash(b *testing.B) {
	const size = 16 << 20
	path := filepath.Join(b.TempDir(), "blob")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sum, buf := sha256.New(), make([]byte, readBufSize)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if id, err := identify(f, size, DefaultMaxSize, sum, buf); err != nil || id.SHA256 == "" {
			b.Fatal(id, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N)/(size>>20), "ms/MiB")
}

// BenchmarkWarmLookup is what an exec of an already hashed file costs.
func BenchmarkWarmLookup(b *testing.B) {
	h := newHasher(b, Options{})
	f := fileAt(b, "/bin/true", 0)
	<-h.Lookup(f).Done()
	b.ReportAllocs()
	for b.Loop() {
		if !h.Lookup(f).Ready() {
			b.Fatal("not cached")
		}
	}
}
