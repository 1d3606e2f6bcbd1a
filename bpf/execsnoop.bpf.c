//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Reports every exec (successful or failed), process exit and, on request,
 * process fork. Attach points are BTF tracepoints (tp_btf), which need no
 * tracefs and no kprobes, plus, where the kernel allows fexit, fexits on
 * the exec path for failed execs. Loads on Linux 5.10 and later: no bpf_loop
 * (5.17), and bpf_task_pt_regs (5.15) with bpf_get_current_task_btf (5.11)
 * only behind a CO-RE check. */

/* One vmlinux.h per architecture (bpf/headers/vmlinux.sh): bpf2go
 * compiles this file once per -target with __TARGET_ARCH_<arch> set. */
#if defined(__TARGET_ARCH_x86)
#include "headers/x86/vmlinux.h"
#elif defined(__TARGET_ARCH_arm64)
#include "headers/arm64/vmlinux.h"
#else
#error "execsnoop.bpf.c: no vmlinux.h for this architecture (bpf/headers/vmlinux.sh)"
#endif
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* SYSCALL_NR reads the saved syscall number (sign-extended: -1 is "no
 * syscall"); KERNEL_STACK_SIZE is the kernel stack (THREAD_SIZE), whose top
 * holds the user registers, only used before bpf_task_pt_regs. Debian's
 * kernels have no KASAN, so both are 16 KiB. */
#if defined(__TARGET_ARCH_x86)
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define SYSCALL_NR(regs) ((long)BPF_CORE_READ(regs, orig_ax))
#define KERNEL_STACK_SIZE (4096 << 2)
/* A successful exec's saved syscall number survives into the new image. */
#define EXEC_NR_FORGOTTEN(nr) false
#elif defined(__TARGET_ARCH_arm64)
/* include/uapi/asm-generic/unistd.h */
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#define SYSCALL_NR(regs) ((long)BPF_CORE_READ(regs, syscallno))
#define KERNEL_STACK_SIZE (4096 << 2) /* MIN_THREAD_SHIFT 14, 4 KiB pages */
/* arm64's start_thread resets the user registers for the new image before
 * sched_process_exec; kernels before it kept syscallno for the
 * sys_exit_execve tracepoint (bcc#3978) forget the syscall too (NO_SYSCALL,
 * -1). Only execve and execveat get there from user space, and an
 * fd-relative execveat is told by bprm->fdpath, so -1 reads as execve. */
#define EXEC_NR_FORGOTTEN(nr) ((nr) == -1)
#else
#error "execsnoop.bpf.c: add the exec syscall numbers of this architecture"
#endif

/* Set by the loader before the program is loaded. */
const volatile bool use_ringbuf = true;
const volatile __u32 args_size_max = 4096;     /* <= ARGS_SIZE_LIMIT */
const volatile bool report_failed_execs = true;
const volatile bool report_only_failed_execs = false;
const volatile bool filter_uid = false;
const volatile bool filter_cgroup = false;
const volatile __u32 exclude_tree_tgid = 0; /* 0: exclude nothing */

#define EXCLUDE_TREE_DEPTH 32

/* Keep these types in BTF so that bpf2go generates their Go twins. */
const enum event_kind *unused_event_kind __attribute__((unused));
const enum exec_syscall *unused_exec_syscall __attribute__((unused));
const enum exec_flags *unused_exec_flags __attribute__((unused));
const enum exec_file_flags *unused_exec_file_flags __attribute__((unused));
const enum path_limits *unused_path_limits __attribute__((unused));
const enum stat_index *unused_stat_index __attribute__((unused));
const struct fork_event *unused_fork_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized by the loader */
} events_ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} uid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* An exec record is built here before it is copied to the buffer: too big
 * for the BPF stack. One slot per CPU (max_entries is set by the loader);
 * a plain array because per-CPU values are capped at 32 KiB. */
struct exec_scratch {
	struct exec_event event;
	/* argv (up to ARGS_SIZE_LIMIT), then the filename. Twice the argv
	 * limit so the verifier can see that any offset below the limit plus
	 * any read size below the limit stays inside. */
	char data[2 * ARGS_SIZE_LIMIT];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized by the loader to the CPU count */
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

#include "tracectx.bpf.h"
#include "rusage.bpf.h"
#include "creds.bpf.h"
#include "execid.bpf.h"
#include "session.bpf.h"
#include "path.bpf.h"
#include "exefile.bpf.h"

static __always_inline void count_stat(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);
	if (value)
		*value += 1;
}

static __always_inline bool in_excluded_tree(struct task_struct *task)
{
	if (!exclude_tree_tgid)
		return false;
	for (int i = 0; i < EXCLUDE_TREE_DEPTH; i++) {
		__u32 tgid = BPF_CORE_READ(task, tgid);
		if (tgid == exclude_tree_tgid)
			return true;
		if (tgid <= 1)
			return false;
		task = BPF_CORE_READ(task, real_parent);
		if (!task)
			return false;
	}
	return false;
}

/* The in-kernel filters: an event that fails them costs no transport. The
 * uid filter matches the real uid, as libbpf-tools' execsnoop -u does. */
static __always_inline bool wanted(struct task_struct *task)
{
	if (filter_uid) {
		__u32 uid = (__u32)bpf_get_current_uid_gid();
		if (!bpf_map_lookup_elem(&uid_filter, &uid))
			return false;
	}
	if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return !in_excluded_tree(task);
}

static __always_inline void fill_header(struct event_header *hdr, __u32 kind, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	hdr->boot_ns = bpf_ktime_get_boot_ns();
	hdr->cgroup_id = bpf_get_current_cgroup_id();
	hdr->kind = kind;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->ppid = BPF_CORE_READ(task, real_parent, tgid);
	fill_effective_ids(hdr, task);
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
}

/* Sends one record. The ring buffer wakes the reader only for the first
 * record after it caught up (flags 0: adaptive), which is what an idle
 * reader blocks for; while records keep coming it drains on its own
 * schedule (a Go timer), so no wakeup costs anything per event. The perf
 * buffer wakes it only at its watermark. */
static __always_inline void output(void *ctx, void *data, __u64 size, __u32 lost_stat)
{
	long err;

	if (use_ringbuf)
		err = bpf_ringbuf_output(&events_ringbuf, data, size, 0);
	else
		err = bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, data, size);
	if (err)
		count_stat(lost_stat);
}

/* The current task's user registers, saved at syscall entry: which syscall
 * ran and, for a failed exec, where its argv is. */
static __always_inline struct pt_regs *current_user_regs(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	void *stack = BPF_CORE_READ(task, stack);
	if (!stack)
		return NULL;
	return (struct pt_regs *)(stack + KERNEL_STACK_SIZE) - 1;
}

static __always_inline struct exec_scratch *exec_scratch_slot(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&exec_scratch, &cpu);
}

static __always_inline __u32 bounded_args_budget(void)
{
	__u32 budget = args_size_max;
	if (budget > ARGS_SIZE_LIMIT)
		budget = ARGS_SIZE_LIMIT;
	return budget;
}

static __always_inline void clear_exec_file(struct exec_event *e)
{
	e->exe_path_size = 0;
	e->cwd_size = 0;
	e->file_flags = 0;
	e->exe_mode = 0;
	e->exe_nlink = 0;
	e->exe_uid = 0;
	e->exe_magic = 0;
	e->exe_dev = 0;
	e->exe_ino = 0;
	e->exe_ctime_sec = 0;
	e->exe_mtime_sec = 0;
	e->exe_ctime_nsec = 0;
	e->exe_mtime_nsec = 0;
}

/* Appends the executable's path (a successful exec: bprm set) and the
 * working directory at data offset pos; returns the bytes added. */
static __always_inline __u32 append_exec_paths(struct exec_scratch *s, __u32 pos, struct linux_binprm *bprm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct path_walk *w;
	__u32 added = 0;

	clear_exec_file(&s->event);
	if (bprm) {
		struct file *file = BPF_CORE_READ(bprm, file);
		fill_exec_file(&s->event, file);
		/* binfmt_script and binfmt_misc name their interpreter there */
		if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename))
			s->event.file_flags |= EXEC_FILE_SCRIPT;
		w = path_start(__builtin_preserve_access_index(&file->f_path), fs);
		if (w) {
			added = path_walk_append(pos);
			s->event.exe_path_size = added;
			if (w->flags & PATH_WALK_CUT)
				s->event.file_flags |= EXEC_FILE_PATH_CUT;
			if (w->flags & PATH_WALK_DETACHED)
				s->event.file_flags |= EXEC_FILE_DETACHED;
		}
	}
	w = path_start(__builtin_preserve_access_index(&fs->pwd), fs);
	if (w) {
		__u32 n = path_walk_append(pos + added);
		s->event.cwd_size = n;
		added += n;
		if (w->flags & PATH_WALK_CUT)
			s->event.file_flags |= EXEC_CWD_CUT;
	}
	return added;
}

/* Appends the filename after args_size bytes of argv, then the trace
 * context and the paths, and sends the record. */
static __always_inline void finish_exec(void *ctx, struct exec_scratch *s, const char *filename,
					bool user_filename, struct linux_binprm *bprm)
{
	__u32 off = s->event.args_size;
	long n;

	if (off > ARGS_SIZE_LIMIT)
		off = ARGS_SIZE_LIMIT;
	if (user_filename)
		n = bpf_probe_read_user_str(&s->data[off], FILENAME_SIZE_LIMIT, filename);
	else
		n = bpf_probe_read_kernel_str(&s->data[off], FILENAME_SIZE_LIMIT, filename);
	if (n < 0)
		n = 0;
	if (n == FILENAME_SIZE_LIMIT)
		s->event.flags |= EXEC_FILENAME_TRUNCATED;
	s->event.filename_size = n;

	__u64 size = sizeof(s->event) + off + (n & (FILENAME_SIZE_LIMIT * 2 - 1));
	size += tracectx_append(s, size - sizeof(s->event));
	size += append_exec_paths(s, size - sizeof(s->event), bprm);
	if (size > sizeof(*s))
		return;
	output(ctx, s, size, STAT_LOST_EXEC);
}

/* A successful exec: past the point of no return, the new image's argv sits
 * contiguous in its memory (mm->arg_start..arg_end, what /proc/PID/cmdline
 * shows), so one read copies every argument with its boundaries. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (report_only_failed_execs || !wanted(task))
		return 0;
	struct exec_scratch *s = exec_scratch_slot();
	if (!s)
		return 0;

	fill_header(&s->event.hdr, EVENT_EXEC, task);
	fill_exec_creds(&s->event, task, bprm);
	fill_exec_identity(&s->event, task);
	fill_exec_session(&s->event, task);
	s->event.retval = 0;
	s->event.loginuid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val) : -1;
	s->event.argc = BPF_CORE_READ(bprm, argc);
	s->event.flags = 0;

	/* After a successful execveat the saved syscall number reads as execve
	 * (seen on 6.18), but an fd-relative execveat leaves bprm->fdpath set. */
	struct pt_regs *regs = current_user_regs();
	long nr = regs ? SYSCALL_NR(regs) : 0;
	bool fd_relative = bpf_core_field_exists(bprm->fdpath) && BPF_CORE_READ(bprm, fdpath);
	s->event.syscall = nr == NR_EXECVEAT || fd_relative	    ? EXEC_SYSCALL_EXECVEAT :
			   nr == NR_EXECVE || EXEC_NR_FORGOTTEN(nr) ? EXEC_SYSCALL_EXECVE :
								      EXEC_SYSCALL_UNKNOWN;

	tracectx_scan(task, s); /* before argv takes the scratch space */
	__u64 arg_start = BPF_CORE_READ(task, mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
	__u32 budget = bounded_args_budget();
	if (len > budget) {
		len = budget;
		s->event.flags |= EXEC_ARGS_TRUNCATED;
	}
	if (len > ARGS_SIZE_LIMIT)
		len = ARGS_SIZE_LIMIT;
	if (bpf_probe_read_user(s->data, len, (void *)arg_start) < 0) {
		len = 0;
		s->event.flags |= EXEC_ARGS_UNREADABLE;
	}
	s->event.args_size = len;

	finish_exec(ctx, s, BPF_CORE_READ(bprm, filename), false, bprm);
	return 0;
}

/* One step of the argv walk: copies argument i while the budget lasts, and
 * counts it either way so that argc is the real count. Returns 1 to stop.
 * The walk's state (argc, args_size) lives in the scratch map, whose values
 * the verifier does not track: every iteration looks the same to it, so a
 * bounded loop of ARGS_COUNT_LIMIT steps verifies in linear time, on
 * kernels without bpf_loop too. */
static __always_inline int read_failed_exec_arg(struct exec_scratch *s, const char *const *argv, __u32 i,
						__u32 budget)
{
	const char *arg = NULL;

	if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i & (ARGS_COUNT_LIMIT - 1)]) < 0) {
		s->event.flags |= EXEC_ARGS_UNREADABLE;
		return 1;
	}
	if (!arg)
		return 1;
	s->event.argc++;
	__u32 off = s->event.args_size;
	if (off >= budget) {
		s->event.flags |= EXEC_ARGS_TRUNCATED;
		return 0;
	}
	__u32 room = budget - off;
	if (room > ARGS_SIZE_LIMIT)
		room = ARGS_SIZE_LIMIT;
	long n = bpf_probe_read_user_str(&s->data[off & (ARGS_SIZE_LIMIT - 1)], room, arg);
	if (n < 0) {
		s->event.flags |= EXEC_ARGS_UNREADABLE;
		return 1;
	}
	/* Kernels before the strncpy_from_user_nofault fix (Debian's 5.10,
	 * 6.1 and 6.12 among them) return 0, not 1, for an empty string. */
	if (n == 0) {
		s->data[off & (ARGS_SIZE_LIMIT - 1)] = 0;
		n = 1;
	}
	/* An argument that filled the rest of the budget may have been cut. */
	if (n == room)
		s->event.flags |= EXEC_ARGS_TRUNCATED;
	s->event.args_size = off + n;
	return 0;
}

/* A failed exec returns to the caller with its memory intact, so argv is
 * read argument by argument from the caller's pointers, still in the
 * syscall's saved registers. */
static __always_inline void report_failed_exec(void *ctx, struct pt_regs *regs, long ret)
{
	long nr = SYSCALL_NR(regs);
	if (nr != NR_EXECVE && nr != NR_EXECVEAT)
		return;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!wanted(task))
		return;
	struct exec_scratch *s = exec_scratch_slot();
	if (!s)
		return;

	const char *filename;
	const char *const *argv;
	if (nr == NR_EXECVE) {
		filename = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		argv = (const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		s->event.syscall = EXEC_SYSCALL_EXECVE;
	} else {
		filename = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		argv = (const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs);
		s->event.syscall = EXEC_SYSCALL_EXECVEAT;
	}

	fill_header(&s->event.hdr, EVENT_EXEC, task);
	fill_exec_creds(&s->event, task, NULL); /* the caller's: nothing was raised */
	fill_exec_identity(&s->event, task);
	fill_exec_session(&s->event, task);
	s->event.retval = ret;
	s->event.loginuid = bpf_core_field_exists(task->loginuid) ? BPF_CORE_READ(task, loginuid.val) : -1;
	s->event.flags = 0;

	__u32 budget = bounded_args_budget();
	s->event.argc = 0;
	s->event.args_size = 0;
	if (argv) {
		for (__u32 i = 0; i < ARGS_COUNT_LIMIT; i++) {
			if (read_failed_exec_arg(s, argv, i, budget))
				break;
		}
	}
	if (s->event.argc == ARGS_COUNT_LIMIT)
		s->event.flags |= EXEC_ARGS_TRUNCATED;
	if (s->event.args_size > budget)
		s->event.args_size = budget;

	finish_exec(ctx, s, filename, true, NULL);
}

/* Failed execs seen at every syscall's exit: works on every kernel, but
 * every syscall on the host pays for the hook. */
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_exec_failure, struct pt_regs *regs, long ret)
{
	if (ret < 0)
		report_failed_exec(ctx, regs, ret);
	return 0;
}

/* Failed execs seen where an exec fails, so that other syscalls pay
 * nothing. Where the kernel's BTF has the syscall wrappers, the loader
 * attaches this program to both __<arch>_sys_execve and _execveat
 * (sysExecveFuncs in kernel_linux.go): it sees every failure with the
 * syscall's own return value. The section names the default target. */
#if defined(__TARGET_ARCH_x86)
SEC("fexit/__x64_sys_execve")
#else
SEC("fexit/__arm64_sys_execve")
#endif
int BPF_PROG(handle_exec_failure_fexit, const struct pt_regs *regs, long ret)
{
	if (ret < 0)
		report_failed_exec(ctx, (struct pt_regs *)regs, ret);
	return 0;
}

/* Else, on kernels before 6.7 (bprm_execve with 4 parameters, which opens
 * the file itself), an fexit on bprm_execve: errors raised before it
 * (E2BIG, EFAULT while copying argv) are not seen. From 6.7 on the file is
 * opened before bprm_execve, so it would miss ENOENT: not used there. */
SEC("fexit/bprm_execve")
int BPF_PROG(handle_exec_failure_fexit_bprm, struct linux_binprm *bprm, int fd, struct filename *filename, int flags,
	     int ret)
{
	if (ret < 0)
		report_failed_exec(ctx, current_user_regs(), ret);
	return 0;
}

/* One exit record per process: only the last thread of a thread group to
 * exit reports, so threads do not look like processes. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	if (!exit_group_dead(ctx, task))
		return 0;
	if (!wanted(task))
		return 0;

	struct exit_event e = {};
	fill_header(&e.hdr, EVENT_EXIT, task);
	read_exec_identity(task, &e.start_boot_ns, &e.exec_seq);
	e.exit_code = BPF_CORE_READ(task, exit_code);
	fill_rusage(&e, task);
	output(ctx, &e, sizeof(e), STAT_LOST_EXIT);
	return 0;
}

/* Process (not thread) creation, for process-lifetime spans. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (!wanted(parent))
		return 0;

	struct fork_event e = {};
	fill_header(&e.hdr, EVENT_FORK, parent);
	e.hdr.pid = BPF_CORE_READ(child, tgid);
	e.hdr.tid = e.hdr.pid;
	e.hdr.ppid = BPF_CORE_READ(parent, tgid);
	read_exec_identity(child, &e.start_boot_ns, &e.exec_seq);
	output(ctx, &e, sizeof(e), STAT_LOST_FORK);
	return 0;
}
