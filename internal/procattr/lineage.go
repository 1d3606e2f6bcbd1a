package procattr

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// Lineage of an exec record: who started it, from the process table
// (Mapper.Table), which knows the parent's image from its exec, or from
// /proc for a process that started before the table.
const (
	ParentExecutablePath    = "execsnoop.parent.executable.path"    // the parent's process.executable.path
	ParentCommandArgs       = "execsnoop.parent.command_args"       // redacted, at most lineage.parent_args_bytes
	AncestorsPID            = "execsnoop.ancestors.pid"             // the parent first, up to lineage.max_ancestors
	AncestorsExecutableName = "execsnoop.ancestors.executable.name" // one per execsnoop.ancestors.pid
	ParentSource            = "execsnoop.parent.source"             // exec, procfs or unknown
)

// Group is a set of the attribute groups of an exec record that
// exec_context selects (credentials, lineage, session).
type Group uint8

const (
	GroupCredentials Group = 1 << iota
	GroupLineage
	GroupSession
	GroupsAll = GroupCredentials | GroupLineage | GroupSession
)

// GroupNames are the names of the groups as exec_context lists them.
var GroupNames = []string{"credentials", "lineage", "session"}

// ParseGroups makes a set of group names; a name that is no group is an
// error that lists the known ones.
func ParseGroups(names []string) (Group, error) {
	var g Group
	for _, n := range names {
		i := slices.Index(GroupNames, n)
		if i < 0 {
			return 0, fmt.Errorf("%q is no group: use %s", n, strings.Join(GroupNames, ", "))
		}
		g |= 1 << i
	}
	return g, nil
}

func (m *Mapper) wants(g Group) bool { return m.Omit&g == 0 }

// lineageAttributes sends the parent and the ancestors of an exec.
func (m *Mapper) lineageAttributes(ev *bpf.Event, s Sink) {
	if m.Table == nil || !m.wants(GroupLineage) {
		return
	}
	parent, src := m.Table.Parent(ev)
	s.Str(ParentSource, src.String())
	if parent == nil {
		return
	}
	if parent.Path != "" {
		s.Str(ParentExecutablePath, EscapeInvalidUTF8(parent.Path))
	}
	if len(parent.Args) > 0 {
		s.Strs(ParentCommandArgs, escapeAll(parent.Args))
	}
	if pids, names := m.Table.Ancestors(ev); len(pids) > 0 {
		s.Ints(AncestorsPID, pids)
		s.Strs(AncestorsExecutableName, escapeAll(names))
	}
}

// escapeAll escapes each string as EscapeInvalidUTF8 does, copying the
// slice only when one needs it.
func escapeAll(vs []string) []string {
	out := vs
	for i, v := range vs {
		if utf8.ValidString(v) {
			continue
		}
		if &out[0] == &vs[0] {
			out = slices.Clone(vs)
		}
		out[i] = EscapeInvalidUTF8(v)
	}
	return out
}
