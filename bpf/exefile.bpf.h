/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The file a successful exec runs (bprm->file; for a script, its
 * interpreter): its inode's identity, owner, mode and times, its file
 * system, and for overlayfs which layer its real file is in. Included by
 * execsnoop.bpf.c; CO-RE reads only, no loop, every type from vmlinux BTF
 * (overlayfs is a module on Debian and 5.10 has no module BTF). */

#ifndef EXEFILE_BPF_H
#define EXEFILE_BPF_H

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define MNT_READONLY 0x40 /* include/linux/mount.h, unchanged since 2.6 */

/* Inode times before 6.6 (timespec64 i_ctime, i_mtime), 6.6 (__i_ctime)
 * and from 6.7/6.11 on (i_ctime_sec, i_mtime_sec, ..._nsec). */
struct inode___ts64 {
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___ictime {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___split {
	time64_t i_mtime_sec;
	time64_t i_ctime_sec;
	u32 i_mtime_nsec;
	u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

static __always_inline void exefile_times(struct exec_event *e, struct inode *inode)
{
	struct inode___split *split = (void *)inode;
	struct inode___ts64 *ts = (void *)inode;
	struct inode___ictime *ic = (void *)inode;

	if (bpf_core_field_exists(split->i_ctime_sec)) {
		e->exe_ctime_sec = BPF_CORE_READ(split, i_ctime_sec);
		/* 6.13's multigrain timestamps keep a flag in bit 31 (I_CTIME_QUERIED) */
		e->exe_ctime_nsec = BPF_CORE_READ(split, i_ctime_nsec) & ~(1u << 31);
	} else if (bpf_core_field_exists(ic->__i_ctime)) {
		e->exe_ctime_sec = BPF_CORE_READ(ic, __i_ctime.tv_sec);
		e->exe_ctime_nsec = BPF_CORE_READ(ic, __i_ctime.tv_nsec);
	} else {
		e->exe_ctime_sec = BPF_CORE_READ(ts, i_ctime.tv_sec);
		e->exe_ctime_nsec = BPF_CORE_READ(ts, i_ctime.tv_nsec);
	}
	if (bpf_core_field_exists(split->i_mtime_sec)) {
		e->exe_mtime_sec = BPF_CORE_READ(split, i_mtime_sec);
		e->exe_mtime_nsec = BPF_CORE_READ(split, i_mtime_nsec);
	} else {
		e->exe_mtime_sec = BPF_CORE_READ(ts, i_mtime.tv_sec);
		e->exe_mtime_nsec = BPF_CORE_READ(ts, i_mtime.tv_nsec);
	}
}

/* A candidate for an overlay file's real file: a file whose inode is the
 * one its dentry names, on another file system. */
static __always_inline bool real_file_ok(struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if (!inode || inode != BPF_CORE_READ(f, f_path.dentry, d_inode))
		return false;
	__u32 magic = BPF_CORE_READ(inode, i_sb, s_magic);
	return magic && magic != OVERLAYFS_SUPER_MAGIC;
}

/* The real (upper or lower layer) file behind an open overlay file, from
 * its private_data: up to 6.12 the real struct file itself (ovl_open),
 * later a struct ovl_file whose first member is that file's pointer. The
 * two are told apart by that first word, a kernel pointer only in
 * ovl_file (in struct file it is a zeroed list node, a count or a lock),
 * and each candidate is checked. */
static __always_inline struct file *ovl_real_file(struct file *file)
{
	void *priv = BPF_CORE_READ(file, private_data);
	__u64 first = 0;

	if (!priv || bpf_probe_read_kernel(&first, sizeof(first), priv) < 0)
		return NULL;
	if (first >> 48 == 0xffff && real_file_ok((struct file *)first))
		return (struct file *)first;
	if (real_file_ok(priv))
		return priv;
	return NULL;
}

/* Before 6.5 (backing files), ovl_open's real file has the overlay's own
 * path (open_with_fake_path): its f_inode is the real inode, but nothing
 * in vmlinux types says which layer holds it (the upper mount is not in
 * reach). Its inode number and device go to user space, which finds the
 * overlay's upperdir in mountinfo and compares. */
static __always_inline void ovl_fake_path_file(struct exec_event *e, struct file *file)
{
	struct file *real = BPF_CORE_READ(file, private_data);
	if (!real || BPF_CORE_READ(real, f_path.dentry) != BPF_CORE_READ(file, f_path.dentry))
		return;
	struct inode *inode = BPF_CORE_READ(real, f_inode);
	if (!inode)
		return;
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	__u32 magic = BPF_CORE_READ(sb, s_magic);
	if (!magic || magic == OVERLAYFS_SUPER_MAGIC)
		return;
	e->exe_real_ino = BPF_CORE_READ(inode, i_ino);
	e->exe_real_dev = BPF_CORE_READ(sb, s_dev);
	e->file_flags |= EXEC_FILE_REAL_INODE;
}

static __always_inline void fill_exec_file(struct exec_event *e, struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);

	e->file_flags |= EXEC_FILE_VALID;
	e->exe_ino = BPF_CORE_READ(inode, i_ino);
	e->exe_mode = BPF_CORE_READ(inode, i_mode);
	e->exe_nlink = BPF_CORE_READ(inode, i_nlink);
	e->exe_uid = BPF_CORE_READ(inode, i_uid.val);
	e->exe_magic = BPF_CORE_READ(sb, s_magic);
	e->exe_dev = BPF_CORE_READ(sb, s_dev);
	exefile_times(e, inode);

	if (e->exe_magic != OVERLAYFS_SUPER_MAGIC)
		return;
	/* overlayfs makes its private mounts of the lower layers read-only
	 * (ovl_get_layers: "Make lower layers R/O"), the upper one not. */
	e->file_flags |= EXEC_FILE_OVERLAY;
	struct file *real = ovl_real_file(file);
	if (!real) {
		e->file_flags |= EXEC_FILE_LAYER_UNKNOWN;
		ovl_fake_path_file(e, file);
		return;
	}
	int mnt_flags = BPF_CORE_READ(real, f_path.mnt, mnt_flags);
	if (!(mnt_flags & MNT_READONLY))
		e->file_flags |= EXEC_FILE_UPPER;
}

#endif
