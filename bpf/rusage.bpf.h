/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Resource usage of a whole process at its exit, for sched_process_exit.
 * Included by execsnoop.bpf.c. Needs nothing newer than Linux 5.10: CO-RE
 * reads, and one bounded loop over the thread list.
 *
 * The totals are what the kernel hands the parent at wait(2) (getrusage
 * RUSAGE_CHILDREN): the signal_struct holds what threads already released
 * left behind (__exit_signal adds each thread's counters there), and every
 * thread still on the thread list (the exiting one, a zombie leader,
 * threads still in their own exit) adds its own.
 *
 * sched_process_exit moved in 6.16: it used to fire after exit_mm and now
 * fires before it, with a new group_dead argument. Nothing here reads the
 * mm: do_exit folds the mm's high-water mark into signal->maxrss before
 * either place, and the thread-group counters do not depend on the mm. */

#ifndef RUSAGE_BPF_H
#define RUSAGE_BPF_H

/* Threads the walk visits; at the last thread's exit the list holds that
 * thread, a zombie leader and threads still exiting, rarely more. */
#define RUSAGE_THREADS_LIMIT 64

/* Keep the enum in BTF so that bpf2go generates its Go twin. */
const enum rusage_flags *unused_rusage_flags __attribute__((unused));

/* Set by the loader from the kernel's BTF: sched_process_exit has the
 * group_dead argument (Linux 6.16 and later). */
const volatile bool exit_has_group_dead = false;

/* Whether the exiting thread is the last of its group. From 6.16 on the
 * tracepoint says so (group_dead); before, signal->live is 0 once the last
 * thread has passed atomic_dec_and_test in do_exit (two threads exiting at
 * once may both see 0 there, and then both report). */
static __always_inline bool exit_group_dead(unsigned long long *ctx, struct task_struct *task)
{
	if (exit_has_group_dead) {
		bool group_dead;
		/* ctx[1] exists only with the new signature; on older kernels
		 * the verifier knows this branch is dead and never checks it. */
		asm volatile("%0 = *(u64 *)(%1 + 8)" : "=r"(group_dead) : "r"(ctx));
		return group_dead;
	}
	return BPF_CORE_READ(task, signal, live.counter) == 0;
}

static __always_inline void rusage_add_task(struct exit_event *e, struct task_struct *t, bool io)
{
	e->runtime_ns += BPF_CORE_READ(t, se.sum_exec_runtime);
	e->utime_ns += BPF_CORE_READ(t, utime);
	e->stime_ns += BPF_CORE_READ(t, stime);
	e->min_flt += BPF_CORE_READ(t, min_flt);
	e->maj_flt += BPF_CORE_READ(t, maj_flt);
	e->nvcsw += BPF_CORE_READ(t, nvcsw);
	e->nivcsw += BPF_CORE_READ(t, nivcsw);
	if (io) {
		e->read_bytes += BPF_CORE_READ(t, ioac.read_bytes);
		e->write_bytes += BPF_CORE_READ(t, ioac.write_bytes);
	}
}

/* Fills the exit record's resource usage for task's thread group. */
static __always_inline void fill_rusage(struct exit_event *e, struct task_struct *task)
{
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	if (!sig)
		return;
	/* CONFIG_TASK_IO_ACCOUNTING: without it there is no read_bytes. */
	bool io = bpf_core_field_exists(sig->ioac.read_bytes);

	e->runtime_ns = BPF_CORE_READ(sig, sum_sched_runtime);
	e->utime_ns = BPF_CORE_READ(sig, utime);
	e->stime_ns = BPF_CORE_READ(sig, stime);
	e->min_flt = BPF_CORE_READ(sig, min_flt);
	e->maj_flt = BPF_CORE_READ(sig, maj_flt);
	e->nvcsw = BPF_CORE_READ(sig, nvcsw);
	e->nivcsw = BPF_CORE_READ(sig, nivcsw);
	/* In pages; getrusage reports it in KiB. */
	e->maxrss_kib = BPF_CORE_READ(sig, maxrss) * (4096 / 1024);
	if (io) {
		e->read_bytes = BPF_CORE_READ(sig, ioac.read_bytes);
		e->write_bytes = BPF_CORE_READ(sig, ioac.write_bytes);
		e->rusage_flags |= RUSAGE_IO;
	}

	/* signal->thread_head links every thread not yet released through
	 * task->thread_node. */
	struct list_head *head = &sig->thread_head;
	struct list_head *pos = BPF_CORE_READ(sig, thread_head.next);
	unsigned long node_off = bpf_core_field_offset(struct task_struct, thread_node);
	int i;
	for (i = 0; i < RUSAGE_THREADS_LIMIT; i++) {
		if (!pos || pos == head)
			break;
		struct task_struct *t = (struct task_struct *)((void *)pos - node_off);
		rusage_add_task(e, t, io);
		pos = BPF_CORE_READ(pos, next);
	}
	if (i == RUSAGE_THREADS_LIMIT)
		e->rusage_flags |= RUSAGE_THREADS_CUT;
	e->rusage_flags |= RUSAGE_VALID;
}

#endif
