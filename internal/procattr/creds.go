package procattr

import (
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/otelexecsnoop/execsnoop/bpf"
)

// The credentials of an exec record, beside process.user.id and
// execsnoop.group.id (the effective ids, on every record): after a
// successful exec the new image's, for a failed one the caller's.
const (
	ProcessRealUserID     = "process.real_user.id"             // semconv
	ProcessSavedUserID    = "process.saved_user.id"            // semconv
	RealGroupID           = "execsnoop.real_group.id"          // the conventions name no group ids
	SavedGroupID          = "execsnoop.saved_group.id"         //
	CapabilitiesEffective = "execsnoop.capabilities.effective" // CAP_* names, ["all"], absent when none
	PrivilegesGained      = "execsnoop.privileges.gained"      // setuid, setgid, file_caps; only when raised
)

// CapabilitiesAll is the whole value of CapabilitiesEffective for a
// process that holds every capability the running kernel knows.
const CapabilitiesAll = "all"

// The values of PrivilegesGained, one per bpf.Privileges bit.
const (
	PrivilegeSetuid   = "setuid"
	PrivilegeSetgid   = "setgid"
	PrivilegeFileCaps = "file_caps"
)

// capNames are the capabilities by number, as linux/capability.h names
// them (CAP_CHECKPOINT_RESTORE, 40, is the last one of Linux 5.9 to 6.18).
// A test compares them with libcap's capsh --decode.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// CapabilityName names capability n; one newer than this table is
// CAP_<n>, as the kernel gives no names.
func CapabilityName(n int) string {
	if n >= 0 && n < len(capNames) {
		return capNames[n]
	}
	return "CAP_" + strconv.Itoa(n)
}

// allCapabilities is the set of every capability the running kernel
// knows, from /proc/sys/kernel/cap_last_cap (this table's when unreadable).
var allCapabilities = sync.OnceValue(func() uint64 {
	last := len(capNames) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			last = n
		}
	}
	return capSetUpTo(last)
})

func capSetUpTo(last int) uint64 {
	if last >= 63 {
		return ^uint64(0)
	}
	return 1<<(last+1) - 1
}

var (
	capsAll   = []string{CapabilitiesAll}
	capsMu    sync.Mutex
	capsLists = map[uint64][]string{}
)

// maxCapLists bounds the cache of name lists: a host runs few distinct
// capability sets, so after the first records an exec allocates nothing.
const maxCapLists = 256

// Capabilities is the value of CapabilitiesEffective for a capability set:
// ["all"] when it holds every capability the kernel knows, else the names
// in capability order, nil when empty. Callers must not modify the slice.
func Capabilities(set uint64) []string {
	return capabilities(set, allCapabilities())
}

func capabilities(set, all uint64) []string {
	switch {
	case set == 0:
		return nil
	case set&all == all:
		return capsAll
	}
	capsMu.Lock()
	defer capsMu.Unlock()
	if names, ok := capsLists[set]; ok {
		return names
	}
	names := make([]string, 0, bits.OnesCount64(set))
	for rest := set; rest != 0; rest &= rest - 1 {
		names = append(names, CapabilityName(bits.TrailingZeros64(rest)))
	}
	if len(capsLists) >= maxCapLists {
		clear(capsLists)
	}
	capsLists[set] = names
	return names
}

// privilegeLists holds the value of PrivilegesGained for every
// combination of the three bits, so that no record allocates one.
var privilegeLists = func() (lists [8][]string) {
	for p := range lists {
		for bit, name := range []string{PrivilegeSetuid, PrivilegeSetgid, PrivilegeFileCaps} {
			if p&(1<<bit) != 0 {
				lists[p] = append(lists[p], name)
			}
		}
	}
	return lists
}()

// Privileges is the value of PrivilegesGained, nil when nothing was raised.
func Privileges(p bpf.Privileges) []string {
	return privilegeLists[p&(bpf.PrivSetuid|bpf.PrivSetgid|bpf.PrivFileCaps)]
}

// credAttributes sends an exec's credentials beyond the effective ids.
func credAttributes(ev *bpf.Event, s Sink) {
	s.Int(ProcessRealUserID, int64(ev.RealUID))
	s.Int(ProcessSavedUserID, int64(ev.SavedUID))
	s.Int(RealGroupID, int64(ev.RealGID))
	s.Int(SavedGroupID, int64(ev.SavedGID))
	if caps := Capabilities(ev.CapEffective); caps != nil {
		s.Strs(CapabilitiesEffective, caps)
	}
	if privs := Privileges(ev.Privileges); privs != nil {
		s.Strs(PrivilegesGained, privs)
	}
}
