// Package redact hides secrets in command lines before they leave the host:
// the semantic conventions say process.command_args SHOULD NOT be collected
// unless sanitized.
package redact

import (
	"fmt"
	"regexp"
	"strings"
)

// Mask replaces every secret value.
const Mask = "****"

// secretName matches option and variable names that carry secrets.
const secretName = `(?i:[a-z0-9_.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth))`

// A rule masks the capture group named "v" of its pattern (or the whole
// match). It runs only on arguments that contain one of its hints, which
// keeps argv without secrets off the regexp engine.
type rule struct {
	re    *regexp.Regexp
	hints []string // nil: always run
	// named rules match secret option or variable names, so they run only
	// on arguments that mention one.
	named bool
}

var builtinRules = []struct {
	pattern string
	hints   []string
}{
	// The first two are named rules (see rule.named).
	// --password=VALUE, -token=VALUE
	{`^--?` + secretName + `=(?P<v>.+)$`, nil},
	// PASSWORD=VALUE, AWS_SECRET_ACCESS_KEY=VALUE (environment-style assignments)
	{`^` + secretName + `=(?P<v>.+)$`, nil},
	// Authorization: Bearer VALUE, Authorization: Basic VALUE, Bearer VALUE
	{`(?i:(?:authorization:\s*)?(?:bearer|basic|token)\s+)(?P<v>\S+)`, []string{"earer", "EARER", "asic", "ASIC", "oken", "OKEN"}},
	// scheme://user:PASSWORD@host
	{`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:(?P<v>[^/\s@]+)@`, []string{"://"}},
	// AWS access key ids, GitHub tokens, Google API keys, Slack tokens, JWTs.
	{`(?P<v>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)`, []string{"AKIA", "ASIA"}},
	{`(?P<v>\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b)`, []string{"gh"}},
	{`(?P<v>\bAIza[0-9A-Za-z_-]{35}\b)`, []string{"AIza"}},
	{`(?P<v>\bxox[abposr]-[0-9A-Za-z-]{10,}\b)`, []string{"xox"}},
	{`(?P<v>\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+)`, []string{"eyJ"}},
}

// separateValue matches options whose secret is the next argument:
// --password VALUE, --token VALUE.
var separateValue = regexp.MustCompile(`^--?` + secretName + `$`)

// Redactor masks secrets in argv.
type Redactor struct {
	rules []rule
}

// New returns a redactor with the built-in rules plus extra patterns. An
// extra pattern masks its group named "v", or the whole match without one.
func New(extra []string) (*Redactor, error) {
	r := &Redactor{}
	for i, b := range builtinRules {
		r.rules = append(r.rules, rule{re: regexp.MustCompile(b.pattern), hints: b.hints, named: i < 2})
	}
	for _, p := range extra {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redaction pattern %q: %w", p, err)
		}
		r.rules = append(r.rules, rule{re: re})
	}
	return r, nil
}

// Args returns argv with secrets masked and whether anything was; when
// nothing was, it returns args itself and allocates nothing.
func (r *Redactor) Args(args []string) ([]string, bool) {
	var out []string
	set := func(i int, v string) {
		if out == nil {
			out = append([]string(nil), args...)
		}
		out[i] = v
	}
	for i, a := range args {
		if i > 0 && a != "" && strings.HasPrefix(args[i-1], "-") && mentionsSecret(args[i-1]) && separateValue.MatchString(args[i-1]) {
			set(i, Mask)
			continue
		}
		if v, ok := r.arg(a); ok {
			set(i, v)
		}
	}
	if out == nil {
		return args, false
	}
	return out, true
}

// arg masks one argument.
func (r *Redactor) arg(a string) (string, bool) {
	changed := false
	for _, rl := range r.rules {
		if rl.hints != nil && !containsAny(a, rl.hints) || rl.named && !(strings.Contains(a, "=") && mentionsSecret(a)) {
			continue
		}
		v := rl.re.FindAllStringSubmatchIndex(a, -1)
		if v == nil {
			continue
		}
		group := rl.re.SubexpIndex("v")
		var b strings.Builder
		last := 0
		for _, m := range v {
			start, end := m[0], m[1]
			if group > 0 && m[2*group] >= 0 {
				start, end = m[2*group], m[2*group+1]
			}
			b.WriteString(a[last:start])
			b.WriteString(Mask)
			last = end
		}
		b.WriteString(a[last:])
		a = b.String()
		changed = true
	}
	return a, changed
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// secretWords are the stems secretName matches, for a cheap first look.
var secretWords = []string{"pass", "pwd", "secret", "token", "key", "credential", "auth"}

// mentionsSecret reports whether s contains a secret word in any ASCII case.
func mentionsSecret(s string) bool {
	for _, w := range secretWords {
		if indexFoldASCII(s, w) >= 0 {
			return true
		}
	}
	return false
}

// indexFoldASCII finds a lowercase ASCII word in s, ignoring case, without
// allocating a lowered copy.
func indexFoldASCII(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for ; j < len(word); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				break
			}
		}
		if j == len(word) {
			return i
		}
	}
	return -1
}
