/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Absolute paths from the kernel's dentries and mounts: the executable an
 * exec runs (bprm->file) and the working directory (fs->pwd), appended to
 * the exec record after the trace context. Included by execsnoop.bpf.c
 * after exec_scratch.
 *
 * The walk is d_path's, bounded: from the file's dentry up through its
 * parents, prepending each name; at the root of a mount it continues at
 * the mount point in the parent mount; it stops at the process's root
 * (fs->root: a chroot or a container's root), at the root of the mount
 * namespace, or at a dentry that is its own parent without being a
 * mount's root (an anonymous file such as a memfd, named like d_path's
 * "/memfd:NAME" without " (deleted)"). A path longer than PATH_SIZE_LIMIT
 * bytes or PATH_DEPTH_LIMIT steps keeps its tail and is marked cut.
 *
 * For Linux 5.10: a bounded loop whose state lives in a map (the verifier
 * tracks none of it, so the iterations look alike), inside a global
 * function that takes only a scalar and is verified once. */

#ifndef PATH_BPF_H
#define PATH_BPF_H

#define PATH_MASK (PATH_SIZE_LIMIT - 1)
_Static_assert((PATH_SIZE_LIMIT & PATH_MASK) == 0, "PATH_SIZE_LIMIT must be a power of two");

/* Where the appended paths may start in the record's data: after argv,
 * the filename and the trace context, before the data area's end. */
#define PATH_DATA_AT_MAX (ARGS_SIZE_LIMIT + FILENAME_SIZE_LIMIT + TRACEPARENT_SIZE_LIMIT + TRACESTATE_SIZE_LIMIT + PATH_SIZE_LIMIT)
_Static_assert(PATH_DATA_AT_MAX + PATH_SIZE_LIMIT <= sizeof(((struct exec_scratch *)0)->data),
	       "two paths do not fit the exec scratch");

/* The name is built backwards: buf[pos, PATH_SIZE_LIMIT). The buffer is
 * twice that so that any offset and any length below the bound stay in. */
struct path_walk {
	__u64 dentry;      /* struct dentry * to name next */
	__u64 mnt;         /* struct mount * it is in */
	__u64 mnt_root;    /* that mount's root dentry, read once per mount */
	__u64 root_dentry; /* the process's root, where the walk stops */
	__u64 root_mnt;    /* struct vfsmount * */
	__u32 pos;
	__u32 flags; /* PATH_WALK_* */
	char buf[2 * PATH_SIZE_LIMIT];
};

enum {
	PATH_WALK_CUT = 1 << 0,
	PATH_WALK_DETACHED = 1 << 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_walk);
} path_walk SEC(".maps");

/* Prepends "/" and the dentry's name. Returns 1 when the name does not
 * fit: the walk ends, cut. */
static __always_inline int path_prepend(struct path_walk *w, struct dentry *d)
{
	struct qstr q = {}; /* length and name in one read */
	bpf_core_read(&q, sizeof(q), &d->d_name);
	__u32 len = q.len;
	const unsigned char *name = q.name;
	__u32 pos = w->pos;

	if (pos > PATH_SIZE_LIMIT || len + 1 > pos) {
		w->flags |= PATH_WALK_CUT;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&w->buf[pos & PATH_MASK], len & PATH_MASK, name);
	pos -= 1;
	w->buf[pos & PATH_MASK] = '/';
	w->pos = pos;
	return 0;
}

/* One step up. Returns 1 when the walk is done. */
static __always_inline int path_step(struct path_walk *w)
{
	struct dentry *d = (struct dentry *)w->dentry;
	struct mount *m = (struct mount *)w->mnt;
	struct vfsmount *vm = (struct vfsmount *)__builtin_preserve_access_index(&m->mnt);

	if (!d || !m)
		return 1;
	if (w->dentry == w->root_dentry && (__u64)vm == w->root_mnt)
		return 1;
	struct dentry *mnt_root = (struct dentry *)w->mnt_root;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		if (d != mnt_root) {
			/* In no tree: only its own name means anything. */
			w->flags |= PATH_WALK_DETACHED;
			path_prepend(w, d);
			return 1;
		}
		struct mount *up = BPF_CORE_READ(m, mnt_parent);
		if (up == m)
			return 1; /* the namespace's root mount */
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)up;
		w->mnt_root = (__u64)BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	}
	if (path_prepend(w, d))
		return 1;
	w->dentry = (__u64)parent;
	return 0;
}

/* Walks from the start path_start stored and copies the result (no NUL)
 * to the record's data at offset at. Returns its length. A global
 * function: verified once, whatever calls it. */
__attribute__((noinline)) int path_walk_append(__u32 at)
{
	__u32 zero = 0;
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_scratch, &cpu);
	struct path_walk *w = bpf_map_lookup_elem(&path_walk, &zero);
	if (!s || !w)
		return 0;

	int i;
	for (i = 0; i < PATH_DEPTH_LIMIT; i++) {
		if (path_step(w))
			break;
	}
	if (i == PATH_DEPTH_LIMIT)
		w->flags |= PATH_WALK_CUT;

	__u32 pos = w->pos;
	if (pos >= PATH_SIZE_LIMIT) { /* nothing named: the root itself */
		pos = PATH_SIZE_LIMIT - 1;
		w->buf[pos] = '/';
	}
	__u32 len = PATH_SIZE_LIMIT - pos;
	if (at > PATH_DATA_AT_MAX)
		return 0;
	if (bpf_probe_read_kernel(&s->data[at], len & PATH_MASK, &w->buf[pos & PATH_MASK]) < 0)
		return 0;
	return len & PATH_MASK;
}

/* Sets up a walk of path. Returns the walk's state, or NULL. */
static __always_inline struct path_walk *path_start(const struct path *path, struct fs_struct *fs)
{
	__u32 zero = 0;
	struct path_walk *w = bpf_map_lookup_elem(&path_walk, &zero);
	if (!w)
		return NULL;
	struct vfsmount *vm = BPF_CORE_READ(path, mnt);
	w->dentry = (__u64)BPF_CORE_READ(path, dentry);
	/* container_of, with the offset relocated */
	w->mnt = (__u64)vm - bpf_core_field_offset(struct mount, mnt);
	w->mnt_root = (__u64)BPF_CORE_READ(vm, mnt_root);
	w->root_dentry = (__u64)BPF_CORE_READ(fs, root.dentry);
	w->root_mnt = (__u64)BPF_CORE_READ(fs, root.mnt);
	w->pos = PATH_SIZE_LIMIT;
	w->flags = 0;
	return w;
}

#endif
