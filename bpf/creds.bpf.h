/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The credentials on a record: the effective ids for every header, and for
 * an exec the real and saved ids, the effective capabilities and what the
 * exec raised. Included by execsnoop.bpf.c; CO-RE reads only, no loop.
 *
 * The ids are the task's objective credentials (task->real_cred, what
 * /proc/PID/status shows) as global ids (the initial user namespace's). */

#ifndef CREDS_BPF_H
#define CREDS_BPF_H

/* Keep the enum in BTF so that bpf2go generates its Go twin. */
const enum exec_privileges *unused_exec_privileges __attribute__((unused));

/* include/uapi/linux/stat.h: macros, so not in vmlinux.h. */
#define CREDS_S_ISUID 04000
#define CREDS_S_ISGID 02000
#define CREDS_S_IXGRP 00010

/* Before Linux 6.3 kernel_cap_t was struct kernel_cap_struct { __u32
 * cap[2]; }, low word first; since then it is struct { __u64 val; }.
 * These flavors let CO-RE find the old layout where it is the kernel's. */
struct kernel_cap_struct___old {
	__u32 cap[2];
};

struct cred___old {
	struct kernel_cap_struct___old cap_permitted;
	struct kernel_cap_struct___old cap_effective;
	struct kernel_cap_struct___old cap_ambient;
};

/* One capability set as 64 bits, bit n for capability n, on either layout.
 * The check is a constant after relocation: the verifier sees only the
 * kernel's own branch (the other one's relocation is poisoned and dead). */
#define CRED_CAPS(cred, set)                                                                       \
	(bpf_core_field_exists(((struct cred *)0)->set.val) ?                                      \
		 (__u64)BPF_CORE_READ(cred, set.val) :                                             \
		 ((__u64)BPF_CORE_READ((struct cred___old *)(cred), set.cap[0]) |                  \
		  (__u64)BPF_CORE_READ((struct cred___old *)(cred), set.cap[1]) << 32))

static __always_inline const struct cred *task_creds(struct task_struct *task)
{
	return BPF_CORE_READ(task, real_cred);
}

/* The effective uid and gid, for the header of every record. */
static __always_inline void fill_effective_ids(struct event_header *hdr, struct task_struct *task)
{
	const struct cred *cred = task_creds(task);

	hdr->uid = BPF_CORE_READ(cred, euid.val);
	hdr->gid = BPF_CORE_READ(cred, egid.val);
}

/* The file whose mode and owner set the new credentials: bprm->file, or
 * for binfmt_misc's C flag (execfd_creds, Linux 5.8) bprm->executable, as
 * begin_new_exec's bprm_creds_from_file picks it. */
static __always_inline struct file *creds_file(struct linux_binprm *bprm)
{
	if (bpf_core_field_exists(bprm->execfd_creds) && BPF_CORE_READ_BITFIELD_PROBED(bprm, execfd_creds))
		return BPF_CORE_READ(bprm, executable);
	return BPF_CORE_READ(bprm, file);
}

/* What a successful exec raised. At sched_process_exec the exec has
 * committed its new credentials and dropped the old ones, so the answer
 * comes from what is left beside the new ids: the kernel's marks on bprm
 * and the file's mode and owner.
 *
 * A set-id bit counts when bprm_fill_uid marked it (bprm->per_clear: not
 * on a nosuid mount, under no_new_privs, for an unmapped owner), the new
 * effective id is the file's owner and differs from the real id (an exec
 * keeps the real ids): not when root runs a setuid-root program, nor when
 * the kernel downgraded the exec for a tracer.
 *
 * File capabilities count when the exec was marked secure (bprm->secureexec,
 * AT_SECURE: cap_bprm_creds_from_file sets it when a process whose real uid
 * is not its user namespace's root gains permitted capabilities) and the
 * new permitted set reaches beyond the ambient one, for an effective uid
 * that is not root and did not come from a setuid bit. Without file
 * capabilities a non-root exec's permitted set is its ambient set; root's
 * exec (and a setuid-root one, which is listed as setuid) regains the
 * bounding set, which is not listed. per_clear does not mark file
 * capabilities (seen on 6.18), so secureexec is the mark for them. A real
 * uid of 0 regains the bounding set (seen as secureexec on 6.18): not
 * listed. In a user namespace its root is not uid 0: not handled. */
static __always_inline __u32 exec_privileges(struct linux_binprm *bprm, struct exec_event *e, __u64 gained_caps)
{
	__u32 privileges = 0;

	if (bpf_core_field_exists(bprm->per_clear) && BPF_CORE_READ(bprm, per_clear)) {
		struct inode *inode = BPF_CORE_READ(creds_file(bprm), f_inode);
		__u32 mode = BPF_CORE_READ(inode, i_mode);

		if ((mode & CREDS_S_ISUID) && e->hdr.uid == BPF_CORE_READ(inode, i_uid.val) &&
		    e->hdr.uid != e->real_uid)
			privileges |= EXEC_PRIV_SETUID;
		if ((mode & (CREDS_S_ISGID | CREDS_S_IXGRP)) == (CREDS_S_ISGID | CREDS_S_IXGRP) &&
		    e->hdr.gid == BPF_CORE_READ(inode, i_gid.val) && e->hdr.gid != e->real_gid)
			privileges |= EXEC_PRIV_SETGID;
	}
	if (gained_caps && e->hdr.uid != 0 && e->real_uid != 0 && !(privileges & EXEC_PRIV_SETUID) &&
	    bpf_core_field_exists(bprm->secureexec) && BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec))
		privileges |= EXEC_PRIV_FILE_CAPS;
	return privileges;
}

/* The exec record's credentials, after fill_header. bprm is NULL for a
 * failed exec, which keeps the caller's credentials and raised nothing. */
static __always_inline void fill_exec_creds(struct exec_event *e, struct task_struct *task, struct linux_binprm *bprm)
{
	const struct cred *cred = task_creds(task);

	e->real_uid = BPF_CORE_READ(cred, uid.val);
	e->saved_uid = BPF_CORE_READ(cred, suid.val);
	e->real_gid = BPF_CORE_READ(cred, gid.val);
	e->saved_gid = BPF_CORE_READ(cred, sgid.val);
	e->cap_effective = CRED_CAPS(cred, cap_effective);
	if (bprm)
		e->privileges = exec_privileges(bprm, e, CRED_CAPS(cred, cap_permitted) & ~CRED_CAPS(cred, cap_ambient));
	else
		e->privileges = 0;
}

#endif
