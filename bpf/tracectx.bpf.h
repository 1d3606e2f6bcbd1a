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
 * For Linux 5.10: bounded loops only, no bpf_loop; the word scan is a
 * global function so the verifier checks it once, not once per page. */

#ifndef TRACECTX_BPF_H
#define TRACECTX_BPF_H

/* Set by the loader: bytes of environment searched, 0 turns the lookup off. */
const volatile __u32 env_scan_max = 0;

#define ENV_PAGE 4096
#define ENV_CHUNK 256 /* bytes per call of the scan: the verifier checks a call's loop in full */
#define ENV_CHUNK_WORDS (ENV_CHUNK / 8)
#define ENV_CHUNKS (ENV_SCAN_LIMIT / ENV_CHUNK)
#define ENV_PIECES (ENV_SCAN_LIMIT / ENV_PAGE + 1) /* an unaligned start adds one piece */

/* The record's data area holds the copy: ENV_SCAN_LIMIT bytes, the word
 * the scan may read past the end, and the 12-byte name compare after it. */
_Static_assert(ENV_SCAN_LIMIT + 32 <= sizeof(((struct exec_scratch *)0)->data),
	       "environment copy does not fit the exec scratch");
_Static_assert(ENV_PIECES <= 32, "bad_pieces is a 32-bit mask");

/* What the scan found, per CPU, until the same exec's record is sent. */
struct tracectx_state {
	__u64 stamp;     /* hdr.boot_ns of the exec this belongs to */
	__u64 env_start; /* user address of the environment */
	__u32 len;       /* bytes copied */
	__u32 tp_off;    /* offset of TRACEPARENT's value, 0: not found */
	__u32 ts_off;    /* offset of TRACESTATE's value, 0: not found */
	__u32 bad_pieces; /* pieces (user pages) that could not be read */
	__u32 flags;     /* enum exec_flags */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tracectx_state);
} tracectx_state SEC(".maps");

/* Every access to the copy is masked into the data area (the verifier
 * then needs no range tracking through the loops). */
#define ENV_MASK 0xffff
_Static_assert(sizeof(((struct exec_scratch *)0)->data) == ENV_MASK + 1, "ENV_MASK is the data area");

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
 * and its name is one of the two. */
static __always_inline void tracectx_candidate(struct exec_scratch *s, struct tracectx_state *st,
					       __u64 p, __u64 len)
{
	if (p + 11 > len)
		return;
	/* The NUL before p must be a real one, not in a page that could not
	 * be read (left as zeros). */
	if (p > 0) {
		__u64 piece = ((st->env_start + p - 1) >> 12) - (st->env_start >> 12);
		if (env_byte(s, p - 1) != 0 || (piece < 32 && (st->bad_pieces >> piece) & 1))
			return;
	}
	__u32 tp = ENV_NAME_DIFF(s, p, "TRACEPARENT=");
	__u32 ts = ENV_NAME_DIFF(s, p, "TRACESTATE=");
	if (!tp && p + 12 <= len && !st->tp_off)
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
	__u64 len = st->len;
	if (len > ENV_SCAN_LIMIT)
		len = ENV_SCAN_LIMIT;
	__u64 first = (__u64)chunk * ENV_CHUNK_WORDS;
	if (first == 0)
		tracectx_candidate(s, st, 0, len);
	for (int i = 0; i < ENV_CHUNK_WORDS; i++) {
		__u64 off = (first + i) * 8;
		if (off >= len)
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
		tracectx_candidate(s, st, off + (((low >> 7) * 0x0001020304050607ULL) >> 56) + 1, len);
		cand &= cand - 1;
		if (cand) {
			low = cand & -cand;
			tracectx_candidate(s, st, off + (((low >> 7) * 0x0001020304050607ULL) >> 56) + 1, len);
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
	__u64 end = BPF_CORE_READ(task, mm, env_end);
	__u64 size = end > start ? end - start : 0;
	__u32 budget = env_scan_max;
	if (budget > ENV_SCAN_LIMIT)
		budget = ENV_SCAN_LIMIT;
	if (size > budget) {
		size = budget;
		st->flags |= EXEC_ENV_TRUNCATED;
	}
	__u32 len = size;
	st->env_start = start;
	st->len = len;

	__u32 off = 0;
	for (int i = 0; i < ENV_PIECES; i++) {
		if (off >= len || off >= ENV_SCAN_LIMIT)
			break;
		__u32 piece = ENV_PAGE - ((start + off) & (ENV_PAGE - 1));
		if (piece > len - off)
			piece = len - off;
		if (piece > ENV_PAGE)
			piece = ENV_PAGE;
		/* A failed read zeroes its piece; the scan skips it. */
		if (bpf_probe_read_user(&s->data[off], piece, (void *)(start + off)) < 0) {
			st->bad_pieces |= 1u << i;
			st->flags |= EXEC_ENV_UNREADABLE;
		}
		off += piece;
	}
	for (__u32 chunk = 0; chunk < ENV_CHUNKS; chunk++) {
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
						 (void *)(st->env_start + st->tp_off));
		if (n > 1) {
			added = n - 1; /* without the NUL */
			s->event.traceparent_size = added;
		}
	}
	if (st->ts_off) {
		__u32 at = pos + (added & (TRACEPARENT_SIZE_LIMIT - 1));
		long n = bpf_probe_read_user_str(&s->data[at], TRACESTATE_SIZE_LIMIT + 1,
						 (void *)(st->env_start + st->ts_off));
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
