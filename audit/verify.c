/*
 * verify: the audit log verifier. One pass over the entries, in order:
 *
 *   1. Before reading any entry, every checkpoint's signature is checked
 *      against the key its key_id names. A bad or unknown signature means the
 *      anchors themselves cannot be trusted, so it is reported first and no
 *      entry is blamed.
 *   2. For each entry: its seq must be the next number (a jump is a deletion
 *      or a reordering; which one is decided by reading on to see whether the
 *      missing numbers turn up later), its prev_hash must equal the previous
 *      hash (else an entry was inserted, replaced or moved), and its own hash
 *      must match its content (else it was edited).
 *   3. When the entry numbered a checkpoint's size has been checked, its hash
 *      must equal the checkpoint's root. A consistent rewrite of the chain
 *      (every hash recomputed) passes step 2 and fails here.
 *   4. At the end, a checkpoint whose size exceeds the number of entries
 *      means entries after it were cut off (truncation).
 *
 * Two threads: a reader thread calls next() (for the SQLite store, decoding
 * the rows is about two thirds of the work) and hands the entries over in
 * blocks of VERIFY_BLOCK_ENTRIES; the caller's thread hashes and checks them
 * in order. Every next() call, including the reading on that diagnoses a
 * jump, happens on the reader thread, so the entry source is used by one
 * thread at a time, as before. Without a thread (pthread_create failed) the
 * caller's thread reads itself.
 *
 * Memory: VERIFY_BLOCKS blocks of entries, one hasher, and one pointer per
 * checkpoint.
 */
#include "audit/verify.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"
#include "service/base/limits.h"

const char *audit_fault_name(enum audit_fault f)
{
	switch (f) {
	case AUDIT_FAULT_NONE: return "none";
	case AUDIT_FAULT_EDITED: return "edited";
	case AUDIT_FAULT_LINK: return "broken_link";
	case AUDIT_FAULT_DELETED: return "deleted";
	case AUDIT_FAULT_REORDERED: return "reordered";
	case AUDIT_FAULT_MALFORMED: return "malformed";
	case AUDIT_FAULT_TRUNCATED: return "truncated";
	case AUDIT_FAULT_REWRITTEN: return "rewritten";
	case AUDIT_FAULT_SIGNATURE: return "bad_checkpoint";
	case AUDIT_FAULT_READ: return "read_error";
	case AUDIT_FAULT_UNANCHORED: return "unanchored";
	case AUDIT_FAULT_ANCHOR: return "anchor";
	case AUDIT_FAULT_DIVERGED: return "diverged";
	}
	return "unknown";
}

static int by_size(const void *a, const void *b)
{
	const struct audit_checkpoint *x = *(const struct audit_checkpoint *const *)a;
	const struct audit_checkpoint *y = *(const struct audit_checkpoint *const *)b;
	return (x->size > y->size) - (x->size < y->size);
}

static void fail(struct audit_verify_result *res, enum audit_fault f, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail(struct audit_verify_result *res, enum audit_fault f, int64_t seq, const char *fmt, ...)
{
	va_list ap;
	res->ok = false;
	res->fault = f;
	res->first_bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
}

static const struct audit_pubkey *key_for(const struct audit_checkpoint *cp,
					  const struct audit_pubkey *const *keys, size_t nkeys)
{
	uint8_t id[AUDIT_KEY_ID_BYTES];
	for (size_t k = 0; k < nkeys; k++) {
		audit_pubkey_key_id(keys[k], id);
		if (memcmp(id, cp->key_id, AUDIT_KEY_ID_BYTES) == 0)
			return keys[k];
	}
	return NULL;
}

/* One checkpoint must be signed by one of keys. */
static bool check_signature(const struct audit_checkpoint *cp, const struct audit_pubkey *const *keys,
			    size_t nkeys, struct audit_verify_result *res)
{
	char kid[2 * AUDIT_KEY_ID_BYTES + 1];
	const struct audit_pubkey *key = key_for(cp, keys, nkeys);
	if (key == NULL) {
		audit_hex_encode(cp->key_id, AUDIT_KEY_ID_BYTES, kid);
		fail(res, AUDIT_FAULT_SIGNATURE, 0,
		     "checkpoint at size %lld names key %s, which is not a known audit key",
		     (long long)cp->size, kid);
		return false;
	}
	if (audit_checkpoint_verify(key, cp) < 0) {
		fail(res, AUDIT_FAULT_SIGNATURE, 0, "checkpoint at size %lld is not validly signed: %s",
		     (long long)cp->size, err_msg());
		return false;
	}
	return true;
}

/* Step 1: every checkpoint given up front must be signed by one of keys. */
static bool check_signatures(const struct audit_checkpoint *const *sorted, size_t ncps,
			     const struct audit_pubkey *const *keys, size_t nkeys,
			     struct audit_verify_result *res)
{
	for (size_t i = 0; i < ncps; i++)
		if (!check_signature(sorted[i], keys, nkeys, res))
			return false;
	return true;
}

/* The two checkpoint sources merged by size: the sorted array and the pulled
 * stream, with one checkpoint of lookahead from the stream. */
struct cp_merge {
	const struct audit_checkpoint *const *sorted;
	size_t ncps, ci;
	audit_next_cp_fn next_cp;
	void *cp_ctx;
	struct audit_checkpoint ahead;
	bool have_ahead, stream_done;
	/* Held around next_cp once the reader thread runs: both sources may
	 * read through one database connection, which two threads must not
	 * use at the same time. */
	pthread_mutex_t *src_lock;
};

/* The next checkpoint in size order without consuming it; NULL at the end.
 * A stream error or a bad signature in the stream ends the walk with *res
 * failed (returns NULL and sets *bad). */
static const struct audit_checkpoint *cp_peek(struct cp_merge *m, const struct audit_pubkey *const *keys,
					      size_t nkeys, struct audit_verify_result *res, bool *bad)
{
	*bad = false;
	if (!m->have_ahead && !m->stream_done && m->next_cp != NULL) {
		if (m->src_lock != NULL)
			pthread_mutex_lock(m->src_lock);
		int r = m->next_cp(m->cp_ctx, &m->ahead);
		char msg[256];
		snprintf(msg, sizeof msg, "%s", r < 0 ? err_msg() : "");
		if (m->src_lock != NULL)
			pthread_mutex_unlock(m->src_lock);
		if (r < 0) {
			err_set(r, "%s", msg);
			fail(res, AUDIT_FAULT_READ, 0, "could not read the checkpoints: %s", err_msg());
			*bad = true;
			return NULL;
		}
		if (r == 0) {
			m->stream_done = true;
		} else {
			if (!check_signature(&m->ahead, keys, nkeys, res)) {
				*bad = true;
				return NULL;
			}
			m->have_ahead = true;
		}
	}
	const struct audit_checkpoint *a = m->ci < m->ncps ? m->sorted[m->ci] : NULL;
	const struct audit_checkpoint *b = m->have_ahead ? &m->ahead : NULL;
	if (a == NULL)
		return b;
	if (b == NULL || a->size <= b->size)
		return a;
	return b;
}

static void cp_pop(struct cp_merge *m, const struct audit_checkpoint *cp)
{
	if (m->ci < m->ncps && cp == m->sorted[m->ci])
		m->ci++;
	else
		m->have_ahead = false;
}

/* ---- the reader thread ------------------------------------------------ */

struct pf_block {
	struct audit_entry e[VERIFY_BLOCK_ENTRIES];
	int n;	       /* entries read into e */
	int end;       /* 1: more may follow; 0: the source ended; < 0: it failed */
	char msg[256]; /* the failure's message (err_msg is per thread) */
	bool full;     /* under lock: the reader filled it, the checker may take it */
};

struct prefetch {
	audit_next_fn next;
	void *ctx;
	struct pf_block *blocks; /* VERIFY_BLOCKS of them, used in turn */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_mutex_t src_lock; /* held while next() runs (see cp_merge) */
	bool threaded, stop;
	pthread_t thread;
	int take;   /* the block the checker reads */
	int pos;    /* the next entry in it */
	bool ended; /* the checker saw the source end or fail */
};

static void pf_fill(struct prefetch *p, struct pf_block *b)
{
	b->n = 0;
	b->end = 1;
	pthread_mutex_lock(&p->src_lock);
	while (b->n < VERIFY_BLOCK_ENTRIES) {
		int r = p->next(p->ctx, &b->e[b->n]);
		if (r != 1) {
			b->end = r < 0 ? r : 0;
			if (r < 0)
				snprintf(b->msg, sizeof b->msg, "%s", err_msg());
			break;
		}
		b->n++;
	}
	pthread_mutex_unlock(&p->src_lock);
}

static void *pf_reader(void *arg)
{
	struct prefetch *p = arg;
	for (int k = 0;; k = (k + 1) % VERIFY_BLOCKS) {
		struct pf_block *b = &p->blocks[k];
		pthread_mutex_lock(&p->lock);
		while (b->full && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		pf_fill(p, b);
		pthread_mutex_lock(&p->lock);
		b->full = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (b->end != 1)
			break;
	}
	return NULL;
}

static int pf_start(struct prefetch *p, audit_next_fn next, void *ctx)
{
	memset(p, 0, sizeof *p);
	p->next = next;
	p->ctx = ctx;
	p->blocks = calloc(VERIFY_BLOCKS, sizeof *p->blocks);
	if (p->blocks == NULL)
		return err_set(ERR_NOMEM, "audit verify: out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_init(&p->src_lock, NULL);
	p->threaded = pthread_create(&p->thread, NULL, pf_reader, p) == 0;
	return 0;
}

static void pf_stop(struct prefetch *p)
{
	if (p->blocks == NULL)
		return;
	if (p->threaded) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->src_lock);
	free(p->blocks);
	p->blocks = NULL;
}

/* The next entry in order, as next() would give it: 1 and *out (valid until
 * the following call), 0 at the end, or a negative code with its message. */
static int pf_next(struct prefetch *p, const struct audit_entry **out)
{
	for (;;) {
		struct pf_block *b = &p->blocks[p->take];
		if (p->ended)
			return 0;
		if (!p->threaded && !b->full) {
			pf_fill(p, b); /* no reader thread: read here */
			b->full = true;
		}
		if (p->threaded) {
			pthread_mutex_lock(&p->lock);
			while (!b->full)
				pthread_cond_wait(&p->cond, &p->lock);
			pthread_mutex_unlock(&p->lock);
		}
		if (p->pos < b->n) {
			*out = &b->e[p->pos++];
			return 1;
		}
		if (b->end != 1) {
			p->ended = true;
			return b->end < 0 ? err_set(b->end, "%s", b->msg) : 0;
		}
		/* Block used up: give it back to the reader, go on to the next. */
		p->pos = 0;
		pthread_mutex_lock(&p->lock);
		b->full = false;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		p->take = (p->take + 1) % VERIFY_BLOCKS;
	}
}

/* After a seq jump from expected to found, reads on to tell a deletion (the
 * missing numbers never appear) from a reordering (one of them turns up). */
static void diagnose_jump(struct prefetch *p, int64_t expected, int64_t found,
			  struct audit_verify_result *res)
{
	const struct audit_entry *e = NULL;
	int64_t pos = expected;
	while (pf_next(p, &e) == 1) {
		pos++;
		if (e->seq >= expected && e->seq < found) {
			fail(res, AUDIT_FAULT_REORDERED, expected,
			     "entries are out of order: position %lld holds entry %lld, and entry "
			     "%lld appears later, at position %lld",
			     (long long)expected, (long long)found, (long long)e->seq, (long long)pos);
			return;
		}
	}
	if (found == expected + 1)
		fail(res, AUDIT_FAULT_DELETED, expected,
		     "entry %lld is missing (deleted): entry %lld follows entry %lld", (long long)expected,
		     (long long)found, (long long)expected - 1);
	else
		fail(res, AUDIT_FAULT_DELETED, expected,
		     "entries %lld to %lld are missing (deleted): entry %lld follows entry %lld",
		     (long long)expected, (long long)found - 1, (long long)found, (long long)expected - 1);
}

int audit_verify(audit_next_fn next, void *ctx, const struct audit_checkpoint *cps, size_t ncps,
		 const struct audit_pubkey *const *keys, size_t nkeys, struct audit_verify_result *res)
{
	struct audit_verify_input in;
	memset(&in, 0, sizeof in);
	in.next = next;
	in.ctx = ctx;
	in.cps = cps;
	in.ncps = ncps;
	in.keys = keys;
	in.nkeys = nkeys;
	return audit_verify_run(&in, res);
}

int audit_verify_run(const struct audit_verify_input *in, struct audit_verify_result *res)
{
	const struct audit_checkpoint **sorted = NULL;
	const struct audit_checkpoint *cp;
	struct audit_hasher *h = NULL;
	const struct audit_entry *e = NULL;
	struct prefetch pf;
	struct cp_merge m;
	uint8_t prev[AUDIT_HASH_BYTES];
	uint8_t computed[AUDIT_HASH_BYTES];
	char tbuf[AUDIT_TIME_BYTES];
	int64_t expected;
	bool bad = false;
	int rc = 0, r;

	memset(res, 0, sizeof *res);
	memset(&pf, 0, sizeof pf);
	snprintf(res->reason, sizeof res->reason, "verification did not run");
	if (in->next == NULL || (in->ncps > 0 && in->cps == NULL) || (in->nkeys > 0 && in->keys == NULL) ||
	    in->start_seq < 0)
		return err_set(ERR_INVALID, "audit verify: missing entry source, checkpoints or keys");
	expected = in->start_seq + 1;
	memcpy(prev, in->start_hash, sizeof prev);
	res->entries = in->start_seq;
	res->anchored = in->start_seq > 0 ? in->start_seq : 0;
	memcpy(res->head, in->start_hash, sizeof res->head);
	if (in->ncps > 0) {
		sorted = calloc(in->ncps, sizeof *sorted);
		if (sorted == NULL) {
			rc = err_set(ERR_NOMEM, "audit verify: out of memory");
			goto out;
		}
		for (size_t i = 0; i < in->ncps; i++)
			sorted[i] = &in->cps[i];
		qsort(sorted, in->ncps, sizeof *sorted, by_size);
	}
	memset(&m, 0, sizeof m);
	m.sorted = sorted;
	m.ncps = in->ncps;
	m.next_cp = in->next_cp;
	m.cp_ctx = in->cp_ctx;
	rc = audit_hasher_new(&h);
	if (rc < 0)
		goto out;
	if (!check_signatures(sorted, in->ncps, in->keys, in->nkeys, res))
		goto out;
	/* Checkpoints inside the prefix already verified: signatures only. */
	while ((cp = cp_peek(&m, in->keys, in->nkeys, res, &bad)) != NULL && cp->size <= in->start_seq) {
		if (cp->size == in->start_seq && memcmp(cp->root, in->start_hash, AUDIT_HASH_BYTES) != 0) {
			audit_time_format(cp->time_us, tbuf);
			fail(res, AUDIT_FAULT_REWRITTEN, in->start_seq,
			     "the chain up to entry %lld does not match the checkpoint signed at %s",
			     (long long)in->start_seq, tbuf);
			goto out;
		}
		res->checkpoints++;
		cp_pop(&m, cp);
	}
	if (bad)
		goto out;

	if ((rc = pf_start(&pf, in->next, in->ctx)) != 0)
		goto out;
	m.src_lock = &pf.src_lock;
	for (;;) {
		r = pf_next(&pf, &e);
		if (r < 0) {
			fail(res, AUDIT_FAULT_READ, 0, "could not read the entry after %lld: %s",
			     (long long)expected - 1, err_msg());
			goto out;
		}
		if (r == 0)
			break;
		if (e->seq > expected) {
			diagnose_jump(&pf, expected, e->seq, res);
			goto out;
		}
		if (e->seq < expected) {
			fail(res, AUDIT_FAULT_REORDERED, expected,
			     "entry %lld appears again after entry %lld (duplicated, inserted or "
			     "reordered)",
			     (long long)e->seq, (long long)expected - 1);
			goto out;
		}
		if (audit_entry_hash(h, e, computed) < 0) {
			fail(res, AUDIT_FAULT_MALFORMED, expected, "entry %lld is malformed: %s",
			     (long long)expected, err_msg());
			goto out;
		}
		if (memcmp(e->prev_hash, prev, AUDIT_HASH_BYTES) != 0) {
			fail(res, AUDIT_FAULT_LINK, expected,
			     "entry %lld does not link to entry %lld: one of them was inserted, "
			     "replaced or moved",
			     (long long)expected, (long long)expected - 1);
			goto out;
		}
		if (memcmp(e->hash, computed, AUDIT_HASH_BYTES) != 0) {
			fail(res, AUDIT_FAULT_EDITED, expected,
			     "entry %lld was edited: its content does not match its hash",
			     (long long)expected);
			goto out;
		}
		memcpy(prev, computed, AUDIT_HASH_BYTES);
		memcpy(res->head, computed, AUDIT_HASH_BYTES);
		res->entries = expected;
		while ((cp = cp_peek(&m, in->keys, in->nkeys, res, &bad)) != NULL && cp->size == expected) {
			if (memcmp(cp->root, computed, AUDIT_HASH_BYTES) != 0) {
				audit_time_format(cp->time_us, tbuf);
				fail(res, AUDIT_FAULT_REWRITTEN, expected,
				     "the chain up to entry %lld does not match the checkpoint "
				     "signed at %s: entries %lld to %lld were rewritten",
				     (long long)expected, tbuf, (long long)res->anchored + 1,
				     (long long)expected);
				goto out;
			}
			res->checkpoints++;
			res->anchored = expected;
			cp_pop(&m, cp);
		}
		if (bad)
			goto out;
		expected++;
	}
	cp = cp_peek(&m, in->keys, in->nkeys, res, &bad);
	if (bad)
		goto out;
	if (cp != NULL) {
		audit_time_format(cp->time_us, tbuf);
		fail(res, AUDIT_FAULT_TRUNCATED, expected,
		     "the log ends after entry %lld, but a checkpoint signed at %s covers %lld "
		     "entries: entries from %lld on were removed (truncated)",
		     (long long)expected - 1, tbuf, (long long)cp->size, (long long)expected);
		goto out;
	}
	res->ok = true;
	snprintf(res->reason, sizeof res->reason, "ok");
out:
	pf_stop(&pf);
	audit_hasher_free(h);
	free(sorted);
	return rc;
}
