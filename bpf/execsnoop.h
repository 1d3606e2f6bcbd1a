/* The one definition of the records the BPF program sends to user space.
 * Go reads these layouts through the types bpf2go generates from this file
 * (-type flags in the go:generate line); nothing re-declares them by hand. */

#ifndef EXECSNOOP_H
#define EXECSNOOP_H

#define TASK_COMM_LEN 16

/* Upper bounds the verifier needs; the configured limits sit below them. */
#define ARGS_SIZE_LIMIT (32 * 1024) /* argv byte budget */
#define ARGS_COUNT_LIMIT 1024       /* argv pointers walked for a failed exec */
#define FILENAME_SIZE_LIMIT 4096    /* PATH_MAX */

/* Every record starts with this header; kind says which body follows. */
enum event_kind {
	EVENT_EXEC = 1,
	EVENT_EXIT = 2,
	EVENT_FORK = 3,
};

struct event_header {
	__u64 boot_ns;   /* bpf_ktime_get_boot_ns() at the event */
	__u64 cgroup_id; /* cgroup v2 id (the cgroup directory's inode) */
	__u32 kind;      /* enum event_kind */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u32 ppid; /* real_parent's tgid */
	__u32 uid;  /* effective ids are what permission checks use */
	__u32 gid;
	char comm[TASK_COMM_LEN];
};

enum exec_syscall {
	EXEC_SYSCALL_UNKNOWN = 0, /* e.g. an exec started by the kernel */
	EXEC_SYSCALL_EXECVE = 1,
	EXEC_SYSCALL_EXECVEAT = 2,
};

enum exec_flags {
	EXEC_ARGS_TRUNCATED = 1 << 0,     /* argv hit the byte budget or the count limit */
	EXEC_FILENAME_TRUNCATED = 1 << 1, /* filename longer than FILENAME_SIZE_LIMIT */
	EXEC_ARGS_UNREADABLE = 1 << 2,    /* the argv memory could not be read */
};

/* An exec record is this struct followed by args_size bytes of argv (each
 * argument NUL-terminated, so empty arguments keep their place; the last one
 * may lack its NUL when EXEC_ARGS_TRUNCATED is set) and then filename_size
 * bytes of the filename (NUL included). */
struct exec_event {
	struct event_header hdr;
	__s32 retval;   /* 0 or -errno */
	__u32 loginuid; /* audit login uid, (u32)-1 when unset */
	__u32 argc;     /* the real argument count, even when argv is cut */
	__u16 args_size;
	__u16 filename_size;
	__u8 syscall; /* enum exec_syscall */
	__u8 flags;   /* enum exec_flags */
	__u8 pad[6];
};

struct exit_event {
	struct event_header hdr;
	__u64 start_boot_ns; /* the process's start, same clock as boot_ns */
	__u32 exit_code;     /* as wait(2) reports it: status << 8 | core << 7 | signal */
	__u32 pad;
};

struct fork_event {
	struct event_header hdr; /* pid is the child, ppid the parent */
	__u64 start_boot_ns;
};

/* Counters the program keeps in the per-CPU "stats" array. */
enum stat_index {
	STAT_LOST_EXEC = 0, /* exec records the buffer had no room for */
	STAT_LOST_EXIT = 1,
	STAT_LOST_FORK = 2,
	STAT_COUNT = 3,
};

#endif
