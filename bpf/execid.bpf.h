/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What names one process image across records (user space formats it as
 * execsnoop.exec.id with the host's boot id): the process's start on the
 * boot-time clock and the kernel's exec counter, task->self_exec_id, which
 * begin_new_exec increments and fork and clone copy. The pair, with the
 * tgid, is the same at an image's exec and at its exit and differs after
 * the next exec or for the next process with that pid. Both are read from
 * the group leader: an exec by another thread makes it the leader and
 * takes over the old leader's start (de_thread), and every thread of an
 * image was cloned after its exec, with its counter. Included by
 * execsnoop.bpf.c; CO-RE reads only. */

#ifndef EXECID_BPF_H
#define EXECID_BPF_H

/* The image a task runs now. */
static __always_inline void read_exec_identity(struct task_struct *task, __u64 *start_boot_ns, __u64 *exec_seq)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	*start_boot_ns = BPF_CORE_READ(leader, start_boottime);
	*exec_seq = BPF_CORE_READ(leader, self_exec_id);
}

/* An exec record's image and the image its real parent (the header's
 * ppid) runs at this moment. */
static __always_inline void fill_exec_identity(struct exec_event *e, struct task_struct *task)
{
	read_exec_identity(task, &e->start_boot_ns, &e->exec_seq);
	read_exec_identity(BPF_CORE_READ(task, real_parent), &e->parent_start_boot_ns, &e->parent_exec_seq);
}

#endif
