/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Trace context from the environment (TRACEPARENT, TRACESTATE), for
 * sched_process_exec. Included by execsnoop.bpf.c after exec_scratch.
 *
 * At a successful exec the new image's initial environment sits in its
 * memory (mm->env_start..env_end): NUL-terminated NAME=value strings. Up to
 * env_scan_max bytes of it are copied, page by page (a page that cannot be
 * read is left as zeros and flagged; the others are still searched), into
 * the exec record's scratch space before argv goes there. A scan finds the
 * variables whose name is exactly TRACEPARENT or TRACESTATE (first of each
 * wins, as getenv), and only their values are appended to the record:
 * no other byte of the environment leaves the kernel.
 *
 * For Linux 5.10 and 6.1 too: bounded loops only, no bpf_loop, sizes
 * clamped where their verifiers can see it; the word scan is a global
 * function so the verifier checks it once, not once per chunk. */

#ifndef TRACECTX_BPF_H
#define TRACECTX_BPF_H

/* Set by the loader: bytes of environment searched, 0 turns the lookup off. */
const volatile __u32 env_scan_max = 0;

#define ENV_PAGE 4096
#define ENV_CHUNK 256 /* bytes per call of the scan: the verifier checks a call's loop in full */
#define ENV_CHUNK_WORDS (ENV_CHUNK / 8)
#define ENV_DATA sizeof(((struct exec_scratch *)0)->data)
#define ENV_CHUNKS (ENV_DATA / ENV_CHUNK)
#define ENV_PIECES (ENV_SCAN_LIMIT / ENV_PAGE + 1) /* an unaligned start adds one piece */

/* The copy keeps the user pages' layout: byte x of the environment goes to
 * data[head + x], head being the environment's offset in its first page,
 * so piece i is data page i. The scan may read a word and a name past the
 * end: every access is masked into the data area. */
_Static_assert(ENV_PAGE - 1 + ENV_SCAN_LIMIT <= ENV_DATA, "environment copy does not fit the exec scratch");
_Static_assert(ENV_PIECES * ENV_PAGE <= ENV_DATA, "a piece would pass the data area");
_Static_assert(ENV_PIECES <= 32, "bad_pieces is a 32-bit mask");

/* What the scan found, per CPU, until the same exec's record is sent.
 * Offsets are into the copy (data); 0 is never a value's offset. */
struct tracectx_state {
	__u64 stamp;      /* hdr.boot_ns of the exec this belongs to */
	__u64 env_base;   /* user address of data[0]: the environment's first page */
	__u32 head;       /* offset of the environment's first byte */
	__u32 end;        /* offset past its last copied byte */
	__u32 tp_off;     /* offset of TRACEPARENT's value, 0: not found */
	__u32 ts_off;     /* offset of TRACESTATE's value, 0: not found */
	__u32 bad_pieces; /* data pages (user pages) that could not be read */
	__u32 flags;      /* enum exec_flags */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tracectx_state);
} tracectx_state SEC(".maps");

/* Every access to the copy is masked into the data area (the verifier
 * then needs no range tracking through the loops). */
#define ENV_MASK (ENV_DATA - 1)
_Static_assert((ENV_DATA & ENV_MASK) == 0, "ENV_MASK needs a power-of-two data area");

static __always_inline __u8 env_byte(struct exec_scratch *s, __u64 i)
{
	return s->data[i & ENV_MASK];
}

/* How much the copy differs from name (a literal) at p: 0 when it holds
 * it. Branch-free, so that the verifier has few paths to walk. */
#define ENV_NAME_DIFF(s, p, name)                                       \
	({                                                              \
		__u32 diff = 0;                                         \
		_Pragma("unroll") for (int k = 0; k < sizeof(name) - 1; k++) \
			diff |= env_byte(s, (p) + k) ^ (__u8)(name)[k]; \
		diff;                                                   \
	})

/* A variable may start at offset p of the copy: records it when it does
 * and its name is one of the two. p is never below head (tracectx_scan
 * zeroed the bytes before it that the scan reads). */
static __always_inline void tracectx_candidate(struct exec_scratch *s, struct tracectx_state *st,
					       __u64 p, __u64 end)
{
	if (p + 11 > end)
		return;
	/* The NUL before p must be a real one, not in a page that could not
	 * be read (left as zeros). */
	__u64 piece = (p - 1) / ENV_PAGE;
	if (env_byte(s, p - 1) != 0 || (piece < 32 && (st->bad_pieces >> piece) & 1))
		return;
	__u32 tp = ENV_NAME_DIFF(s, p, "TRACEPARENT=");
	__u32 ts = ENV_NAME_DIFF(s, p, "TRACESTATE=");
	if (!tp && p + 12 <= end && !st->tp_off)
		st->tp_off = p + 12;
	if (!ts && !st->ts_off)
		st->ts_off = p + 11;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The high bit of every byte of v that is zero (and maybe of a 0x01 byte
 * above a zero one: callers check). */
static __always_inline __u64 zero_bytes(__u64 v)
{
	return (v - ONES) & ~v & HIGHS;
}

/* Scans one chunk of the copy a word at a time: only a NUL followed by a
 * 'T' is looked at closer. Returns 1 when both variables are found or the
 * copy ends. A global function, so the verifier checks it once; the chunk
 * is small enough for the verifier's branch limit. */
__attribute__((noinline)) int tracectx_scan_chunk(__u32 chunk)
{
	__u32 zero = 0;
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_scratch, &cpu);
	struct tracectx_state *st = bpf_map_lookup_elem(&tracectx_state, &zero);
	if (!s || !st || chunk >= ENV_CHUNKS)
		return 1;
	__u64 end = st->end;
	if (end > ENV_DATA)
		end = ENV_DATA;
	__u64 first = (__u64)chunk * ENV_CHUNK_WORDS;
	if (chunk == st->head / ENV_CHUNK)
		tracectx_candidate(s, st, st->head, end);
	for (int i = 0; i < ENV_CHUNK_WORDS; i++) {
		__u64 off = (first + i) * 8;
		if (off >= end)
			return 1;
		__u64 v = *(__u64 *)&s->data[off & (ENV_MASK & ~7)];
		__u64 cand = zero_bytes(v); /* most words hold no NUL: done */
		if (!cand)
			continue;
		__u64 next = *(__u64 *)&s->data[(off + 8) & (ENV_MASK & ~7)];
		__u64 following = (v >> 8) | (next << 56); /* each byte's successor */
		cand &= zero_bytes(following ^ ('T' * ONES));
		if (!cand)
			continue;
		/* At most two per word: the byte index of the lowest flag, by
		 * a multiply, then of the next one. (A third needs three empty
		 * one-letter variables "T=" within 8 bytes.) */
		__u64 low = cand & -cand;
		tracectx_candidate(s, st, off + (((low >> 7) * 0x0001020304050607ULL) >> 56) + 1, end);
		cand &= cand - 1;
		if (cand) {
			low = cand & -cand;
			tracectx_candidate(s, st, off + (((low >> 7) * 0x0001020304050607ULL) >> 56) + 1, end);
		}
		if (st->tp_off && st->ts_off)
			return 1;
	}
	return 0;
}

/* Copies and searches the new image's environment (handle_exec, before
 * argv is read into the same space). */
static __always_inline void tracectx_scan(struct task_struct *task, struct exec_scratch *s)
{
	__u32 zero = 0;
	if (!env_scan_max)
		return;
	struct tracectx_state *st = bpf_map_lookup_elem(&tracectx_state, &zero);
	if (!st)
		return;
	st->stamp = s->event.hdr.boot_ns;
	st->tp_off = 0;
	st->ts_off = 0;
	st->bad_pieces = 0;
	st->flags = 0;

	__u64 start = BPF_CORE_READ(task, mm, env_start);
	__u64 env_end = BPF_CORE_READ(task, mm, env_end);
	__u64 size = env_end > start ? env_end - start : 0;
	__u32 budget = env_scan_max;
	if (budget > ENV_SCAN_LIMIT)
		budget = ENV_SCAN_LIMIT;
	if (size > budget) {
		size = budget;
		st->flags |= EXEC_ENV_TRUNCATED;
	}
	__u64 head = start & (ENV_PAGE - 1);
	__u64 end = head + size;
	st->env_base = start - head;
	st->head = head;
	st->end = end;
	if (!size)
		return;
	/* Zeros before head, in the words the scan reads: no stale byte
	 * there makes a candidate, and the first variable follows a NUL. At
	 * head 0 the first lands at the top, where no copy goes. */
	*(__u64 *)&s->data[(head - 1) & (ENV_MASK & ~7)] = 0;
	*(__u64 *)&s->data[head & (ENV_MASK & ~7)] = 0;

	/* Piece 0, head to the end of the first page, then whole pages.
	 * Each size is clamped behind a barrier: never needed, but verifiers
	 * before 6.8 learn nothing from comparing two unknowns. And they walk
	 * branches that cannot be taken, with impossible bounds: with a
	 * budget below 60 KiB, end < lo in the last pieces. So the loop reads
	 * end back from the map, where the verifier knows nothing of it. */
	__u64 n = ENV_PAGE - head;
	if (n > size)
		n = size;
	barrier_var(n);
	if (n > ENV_PAGE)
		n = ENV_PAGE;
	if (bpf_probe_read_user(&s->data[head], n, (void *)start) < 0) {
		st->bad_pieces |= 1;
		st->flags |= EXEC_ENV_UNREADABLE;
	}
	for (__u32 i = 1; i < ENV_PIECES; i++) {
		__u64 lo = (__u64)i * ENV_PAGE;
		__s64 left = (__u64)*(volatile __u32 *)&st->end - lo;
		barrier_var(left);
		if (left <= 0)
			break;
		if (left > ENV_PAGE)
			left = ENV_PAGE;
		/* A failed read zeroes its piece; the scan skips it. */
		if (bpf_probe_read_user(&s->data[lo], left, (void *)(st->env_base + lo)) < 0) {
			st->bad_pieces |= 1u << i;
			st->flags |= EXEC_ENV_UNREADABLE;
		}
	}
	for (__u32 chunk = head / ENV_CHUNK; chunk < ENV_CHUNKS; chunk++) {
		if (tracectx_scan_chunk(chunk))
			break;
	}
}

/* Appends the found values to the record at data offset pos (after the
 * filename) and returns how many bytes were added. Any exec record goes
 * through here; only the one tracectx_scan ran for gets values. */
static __always_inline __u32 tracectx_append(struct exec_scratch *s, __u32 pos)
{
	__u32 zero = 0;
	s->event.traceparent_size = 0;
	s->event.tracestate_size = 0;
	s->event.pad2 = 0;
	if (!env_scan_max)
		return 0;
	struct tracectx_state *st = bpf_map_lookup_elem(&tracectx_state, &zero);
	if (!st || st->stamp != s->event.hdr.boot_ns)
		return 0;
	s->event.flags |= st->flags;
	if (pos > ARGS_SIZE_LIMIT + FILENAME_SIZE_LIMIT)
		return 0;

	__u32 added = 0;
	if (st->tp_off) {
		long n = bpf_probe_read_user_str(&s->data[pos], TRACEPARENT_SIZE_LIMIT,
						 (void *)(st->env_base + st->tp_off));
		if (n > 1) {
			added = n - 1; /* without the NUL */
			s->event.traceparent_size = added;
		}
	}
	if (st->ts_off) {
		__u32 at = pos + (added & (TRACEPARENT_SIZE_LIMIT - 1));
		long n = bpf_probe_read_user_str(&s->data[at], TRACESTATE_SIZE_LIMIT + 1,
						 (void *)(st->env_base + st->ts_off));
		if (n > 1) {
			s->event.tracestate_size = n - 1;
			added += n - 1;
			if (n == TRACESTATE_SIZE_LIMIT + 1)
				s->event.flags |= EXEC_TRACESTATE_TRUNCATED;
		}
	}
	return added;
}

#endif
