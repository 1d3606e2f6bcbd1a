// Package layout checks the shape of the repository itself: no
// hand-written Go file grows past maxLines, and the README's layout table
// names every top-level folder and every internal package.
package layout

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maxLines bounds a hand-written Go file, so that each file does one job
// and the next person knows where to look.
const maxLines = 500

// generated is Go's marker of a generated file (go help generate): bpf2go,
// mdatagen and ocb write it, and their output is exempt.
var generated = regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.$`)

// root is the repository: two levels up from this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil ||
		!bytes.HasPrefix(raw, []byte("module github.com/otelexecsnoop/execsnoop\n")) {
		t.Fatalf("%s is not the repository root (its go.mod: %v)", dir, err)
	}
	return dir
}

// ignored are the top-level folders .gitignore names ("/bin/"), and .git.
func ignored(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{".git": true}
	raw, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "/"); ok && strings.HasSuffix(name, "/") && strings.Count(name, "/") == 1 {
			out[strings.TrimSuffix(name, "/")] = true
		}
	}
	return out
}

// isGenerated reports whether a Go file carries the marker before its
// package clause.
func isGenerated(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if generated.MatchString(line) {
			return true, nil
		}
		if strings.HasPrefix(line, "package ") {
			return false, nil
		}
	}
	return false, sc.Err()
}

func TestGoFilesAreSmall(t *testing.T) {
	dir := root(t)
	skip := ignored(t, dir)
	checked := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if skip[rel] || d.Name() == "node_modules" || d.Name() == "vendor" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		if gen, err := isGenerated(path); err != nil || gen {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		if n := bytes.Count(raw, []byte("\n")); n > maxLines {
			t.Errorf("%s has %d lines, more than %d: split it along the jobs it does (whole functions, tests beside the file they test)", rel, n, maxLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d Go files below %s: the walk is broken", checked, dir)
	}
}

// layoutPaths are the paths in the first column of the README's layout
// table, without their trailing slash.
func layoutPaths(t *testing.T, dir string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	paths := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			paths[strings.TrimSuffix(m[1], "/")] = true
		}
	}
	if len(paths) == 0 {
		t.Fatal("README.md's layout table names no paths")
	}
	return paths
}

func TestREADMELayoutNamesEveryFolder(t *testing.T) {
	dir := root(t)
	skip := ignored(t, dir)
	paths := layoutPaths(t, dir)
	covered := func(name string) bool {
		for p := range paths {
			if p == name || strings.HasPrefix(p, name+"/") {
				return true
			}
		}
		return false
	}
	top, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.IsDir() && !skip[e.Name()] && !covered(e.Name()) {
			t.Errorf("README.md's layout table does not name the top-level folder %s/", e.Name())
		}
	}
	internal, err := os.ReadDir(filepath.Join(dir, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range internal {
		if name := "internal/" + e.Name(); e.IsDir() && !paths[name] {
			t.Errorf("README.md's layout table does not name the package %s", name)
		}
	}
	for p := range paths {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("README.md's layout table names %s, which does not exist", p)
		}
	}
}
