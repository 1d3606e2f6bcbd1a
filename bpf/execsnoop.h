/* The one definition of the records the BPF program sends to user space.
 * Go reads these layouts through the types bpf2go generates from this file
 * (-type flags in the go:generate line); nothing re-declares them by hand. */

#ifndef EXECSNOOP_H
#define EXECSNOOP_H

#define TASK_COMM_LEN 16
#define TTY_NAME_SIZE 36 /* of tty->name's 64: pts, tty, ttyS and the like need far less */

/* Upper bounds the verifier needs; the configured limits sit below them. */
#define ARGS_SIZE_LIMIT (32 * 1024) /* argv byte budget */
#define ARGS_COUNT_LIMIT 1024       /* argv pointers walked for a failed exec */
#define FILENAME_SIZE_LIMIT 4096    /* PATH_MAX */
#define ENV_SCAN_LIMIT (60 * 1024)  /* environment bytes searched for trace context */
#define TRACEPARENT_SIZE_LIMIT 64   /* a version-00 traceparent is 55 bytes */
#define TRACESTATE_SIZE_LIMIT 512   /* what W3C asks vendors to propagate */

/* The bounds of the in-kernel path walk (path.bpf.h). An enum, not
 * defines, so that Go gets them from bpf2go. */
enum path_limits {
	PATH_SIZE_LIMIT = 4096, /* bytes of one resolved path, with its NUL */
	PATH_DEPTH_LIMIT = 64,  /* dentries named plus mounts crossed */
};

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
	__u32 uid;  /* effective uid and gid (cred->euid, egid): what permission */
	__u32 gid;  /* checks use, and what semconv's process.user.id means */
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
	EXEC_ENV_UNREADABLE = 1 << 3,     /* a page of the environment could not be read */
	EXEC_ENV_TRUNCATED = 1 << 4,      /* the environment is longer than the scan budget */
	EXEC_TRACESTATE_TRUNCATED = 1 << 5, /* TRACESTATE longer than TRACESTATE_SIZE_LIMIT */
};

/* What a successful exec raised (creds.bpf.h): the set-user-ID or
 * set-group-ID bit took effect, or the file's capabilities added to the
 * permitted set of a process that is not root. */
enum exec_privileges {
	EXEC_PRIV_SETUID = 1 << 0,
	EXEC_PRIV_SETGID = 1 << 1,
	EXEC_PRIV_FILE_CAPS = 1 << 2,
};

/* What the kernel says about the file a successful exec runs and the
 * paths walked for it (path.bpf.h). */
enum exec_file_flags {
	EXEC_FILE_VALID = 1 << 0,       /* the exe_* fields were read (a successful exec) */
	EXEC_FILE_PATH_CUT = 1 << 1,    /* the executable's path hit a PATH_* bound: only its tail is there */
	EXEC_FILE_DETACHED = 1 << 2,    /* the walk ended at a dentry in no mount's tree: an anonymous file */
	EXEC_FILE_OVERLAY = 1 << 3,     /* the file is on overlayfs */
	EXEC_FILE_UPPER = 1 << 4,       /* ... and its real file is in the upper (writable) layer */
	EXEC_FILE_LAYER_UNKNOWN = 1 << 5, /* ... but its real file could not be found */
	EXEC_FILE_SCRIPT = 1 << 6,      /* an interpreter runs the named file (bprm->interp was changed) */
	EXEC_FILE_REAL_INODE = 1 << 7,  /* ... its layer unknown, but its real inode is in exe_real_* (before 6.5: user space decides) */
	EXEC_CWD_CUT = 1 << 7,          /* the working directory hit a PATH_* bound */
};

/* An exec record is this struct followed by args_size bytes of argv (each
 * argument NUL-terminated, so empty arguments keep their place; the last one
 * may lack its NUL when EXEC_ARGS_TRUNCATED is set), then filename_size
 * bytes of the filename (NUL included), then traceparent_size and
 * tracestate_size bytes of the values of the new image's TRACEPARENT and
 * TRACESTATE environment variables (no NUL; 0 when absent or not looked for),
 * then exe_path_size bytes of the executable's absolute path and cwd_size
 * bytes of the working directory (no NUL; 0 when not read). */
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
	__u16 traceparent_size;
	__u16 tracestate_size;
	__u32 pad2;
	/* The credentials after a successful exec, the caller's for a failed
	 * one; the effective uid and gid are in the header. */
	__u32 real_uid;
	__u32 saved_uid;
	__u32 real_gid;
	__u32 saved_gid;
	__u64 cap_effective; /* bit n: capability n (CAP_CHOWN = 0) */
	__u64 start_boot_ns; /* the process's start (its fork), same clock as boot_ns */
	__u32 privileges;    /* enum exec_privileges; 0 for a failed exec */
	__u32 pad3;
	/* The image (execid.bpf.h): this process's exec counter after a
	 * successful exec (the caller's for a failed one), and the real
	 * parent's start and exec counter. */
	__u64 exec_seq;
	__u64 parent_start_boot_ns;
	__u64 parent_exec_seq;
	/* The session (session.bpf.h). */
	__u32 sid;              /* session id, a host pid */
	__u32 pgid;             /* process group id, a host pid */
	__u32 vpid;             /* the tgid in the process's own PID namespace */
	__u32 audit_session_id; /* (u32)-1 when unset */
	__s32 tty_index;        /* controlling terminal's index, -1 without one */
	char tty_name[TTY_NAME_SIZE]; /* tty->name, e.g. pts3, tty1 */
	/* The executable file (bprm->file: for a script, its interpreter)
	 * and the walked paths (path.bpf.h); zero for a failed exec. */
	__u16 exe_path_size;
	__u16 cwd_size;
	__u16 file_flags; /* enum exec_file_flags */
	__u16 exe_mode;   /* inode i_mode: type and permission bits */
	__u32 exe_nlink;  /* links left; 0 for a deleted or anonymous file */
	__u32 exe_uid;    /* owner, a global uid */
	__u32 exe_magic;  /* the file system's s_magic */
	__u32 exe_dev;    /* the superblock's s_dev (kernel encoding: major << 20 | minor) */
	__u64 exe_ino;
	__s64 exe_ctime_sec; /* inode change and data modification times */
	__s64 exe_mtime_sec;
	__u32 exe_ctime_nsec;
	__u32 exe_mtime_nsec;
	/* For an overlay file whose layer the kernel cannot tell: the real
	 * file's inode and s_dev (EXEC_FILE_REAL_INODE). */
	__u64 exe_real_ino;
	__u32 exe_real_dev;
	__u32 pad4;
};

struct exit_event {
	struct event_header hdr;
	__u64 start_boot_ns; /* the process's start, same clock as boot_ns */
	__u64 exec_seq;      /* the exiting image's exec counter (execid.bpf.h) */
	__u32 exit_code;     /* as wait(2) reports it: status << 8 | core << 7 | signal */
	__u32 pad;
	/* Resource usage of the whole thread group (rusage.bpf.h). */
	__u64 runtime_ns;  /* CPU time from the scheduler, every thread */
	__u64 utime_ns;    /* tick-sampled user time: with stime_ns, the user/system split */
	__u64 stime_ns;
	__u64 maxrss_kib;  /* peak resident set, as getrusage's ru_maxrss */
	__u64 min_flt;
	__u64 maj_flt;
	__u64 nvcsw;       /* voluntary context switches */
	__u64 nivcsw;
	__u64 read_bytes;  /* storage I/O (task_io_accounting) */
	__u64 write_bytes;
	__u32 rusage_flags; /* enum rusage_flags */
	__u32 pad2;
};

enum rusage_flags {
	RUSAGE_VALID = 1 << 0,       /* the fields above were filled */
	RUSAGE_IO = 1 << 1,          /* read_bytes/write_bytes are accounted */
	RUSAGE_THREADS_CUT = 1 << 2, /* more live threads than the walk visits */
};

struct fork_event {
	struct event_header hdr; /* pid is the child, ppid the parent */
	__u64 start_boot_ns;
	__u64 exec_seq; /* the child's exec counter: its parent's, copied */
};

/* Counters the program keeps in the per-CPU "stats" array. */
enum stat_index {
	STAT_LOST_EXEC = 0, /* exec records the buffer had no room for */
	STAT_LOST_EXIT = 1,
	STAT_LOST_FORK = 2,
	STAT_COUNT = 3,
};

#endif
