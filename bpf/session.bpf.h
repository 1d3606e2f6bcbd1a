/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Where an exec runs from: its session and process group (host pids), its
 * controlling terminal, its audit session and its pid in its own PID
 * namespace. Included by execsnoop.bpf.c; CO-RE reads only, no loop. */

#ifndef SESSION_BPF_H
#define SESSION_BPF_H

/* A struct pid's number in the initial namespace (level 0): a host pid. */
static __always_inline __u32 host_nr(struct pid *pid)
{
	return pid ? BPF_CORE_READ(pid, numbers[0].nr) : 0;
}

static __always_inline void fill_exec_session(struct exec_event *e, struct task_struct *task)
{
	struct signal_struct *signal = BPF_CORE_READ(task, signal);
	struct tty_struct *tty = BPF_CORE_READ(signal, tty);

	e->sid = host_nr(BPF_CORE_READ(signal, pids[PIDTYPE_SID]));
	e->pgid = host_nr(BPF_CORE_READ(signal, pids[PIDTYPE_PGID]));

	/* The tgid as the process's own namespace numbers it: the leader's
	 * pid at its deepest level. */
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	e->vpid = BPF_CORE_READ(pid, numbers[level].nr);

	e->audit_session_id = bpf_core_field_exists(task->sessionid) ? BPF_CORE_READ(task, sessionid) : -1;

	e->tty_index = -1;
	e->tty_name[0] = 0;
	if (tty) {
		e->tty_index = BPF_CORE_READ(tty, index);
		bpf_probe_read_kernel_str(e->tty_name, sizeof(e->tty_name), &tty->name);
	}
}

#endif
