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
 * Memory: one entry buffer, one hasher, and one pointer per checkpoint.
 */
#include "audit/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"

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
	}
	return "unknown";
}

static int by_size(const void *a, const void *b)
{
	const struct audit_checkpoint *x = *(const struct audit_checkpoint *const *)a;
	const struct audit_checkpoint *y = *(const struct audit_checkpoint *const *)b;
	return (x->size > y->size) - (x->size < y->size);
}

static void fail(struct audit_verify_result *res, enum audit_fault f, int64_t seq,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(struct audit_verify_result *res, enum audit_fault f, int64_t seq,
		 const char *fmt, ...)
{
	va_list ap;
	res->ok = false;
	res->fault = f;
	res->first_bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
}

/* Step 1: every checkpoint must be signed by one of keys. */
static bool check_signatures(const struct audit_checkpoint *const *sorted, size_t ncps,
			     const struct audit_pubkey *const *keys, size_t nkeys,
			     struct audit_verify_result *res)
{
	char kid[2 * AUDIT_KEY_ID_BYTES + 1];
	uint8_t id[AUDIT_KEY_ID_BYTES];

	for (size_t i = 0; i < ncps; i++) {
		const struct audit_checkpoint *cp = sorted[i];
		const struct audit_pubkey *key = NULL;
		for (size_t k = 0; k < nkeys && key == NULL; k++) {
			audit_pubkey_key_id(keys[k], id);
			if (memcmp(id, cp->key_id, AUDIT_KEY_ID_BYTES) == 0)
				key = keys[k];
		}
		if (key == NULL) {
			audit_hex_encode(cp->key_id, AUDIT_KEY_ID_BYTES, kid);
			fail(res, AUDIT_FAULT_SIGNATURE, 0,
			     "checkpoint at size %lld names key %s, which is not a known audit key",
			     (long long)cp->size, kid);
			return false;
		}
		if (audit_checkpoint_verify(key, cp) < 0) {
			fail(res, AUDIT_FAULT_SIGNATURE, 0,
			     "checkpoint at size %lld is not validly signed: %s", (long long)cp->size,
			     err_msg());
			return false;
		}
	}
	return true;
}

/* After a seq jump from expected to found, reads on to tell a deletion (the
 * missing numbers never appear) from a reordering (one of them turns up). */
static void diagnose_jump(audit_next_fn next, void *ctx, struct audit_entry *e,
			  int64_t expected, int64_t found, struct audit_verify_result *res)
{
	int64_t pos = expected;
	while (next(ctx, e) == 1) {
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
		     "entry %lld is missing (deleted): entry %lld follows entry %lld",
		     (long long)expected, (long long)found, (long long)expected - 1);
	else
		fail(res, AUDIT_FAULT_DELETED, expected,
		     "entries %lld to %lld are missing (deleted): entry %lld follows entry %lld",
		     (long long)expected, (long long)found - 1, (long long)found,
		     (long long)expected - 1);
}

int audit_verify(audit_next_fn next, void *ctx, const struct audit_checkpoint *cps,
		 size_t ncps, const struct audit_pubkey *const *keys, size_t nkeys,
		 struct audit_verify_result *res)
{
	const struct audit_checkpoint **sorted = NULL;
	struct audit_hasher *h = NULL;
	struct audit_entry *e = NULL;
	uint8_t prev[AUDIT_HASH_BYTES] = { 0 };
	uint8_t computed[AUDIT_HASH_BYTES];
	char tbuf[AUDIT_TIME_BYTES];
	int64_t expected = 1;
	size_t ci = 0;
	int rc = 0, r;

	memset(res, 0, sizeof *res);
	snprintf(res->reason, sizeof res->reason, "verification did not run");
	if (next == NULL || (ncps > 0 && cps == NULL) || (nkeys > 0 && keys == NULL))
		return err_set(ERR_INVALID, "audit verify: missing entry source, checkpoints or keys");
	if (ncps > 0) {
		sorted = calloc(ncps, sizeof *sorted);
		if (sorted == NULL) {
			rc = err_set(ERR_NOMEM, "audit verify: out of memory");
			goto out;
		}
		for (size_t i = 0; i < ncps; i++)
			sorted[i] = &cps[i];
		qsort(sorted, ncps, sizeof *sorted, by_size);
	}
	e = malloc(sizeof *e);
	if (e == NULL) {
		rc = err_set(ERR_NOMEM, "audit verify: out of memory");
		goto out;
	}
	rc = audit_hasher_new(&h);
	if (rc < 0)
		goto out;
	if (!check_signatures(sorted, ncps, keys, nkeys, res))
		goto out;

	for (;;) {
		r = next(ctx, e);
		if (r < 0) {
			fail(res, AUDIT_FAULT_READ, 0, "could not read the entry after %lld: %s",
			     (long long)expected - 1, err_msg());
			goto out;
		}
		if (r == 0)
			break;
		if (e->seq > expected) {
			diagnose_jump(next, ctx, e, expected, e->seq, res);
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
		for (; ci < ncps && sorted[ci]->size == expected; ci++) {
			if (memcmp(sorted[ci]->root, computed, AUDIT_HASH_BYTES) != 0) {
				audit_time_format(sorted[ci]->time_us, tbuf);
				fail(res, AUDIT_FAULT_REWRITTEN, expected,
				     "the chain up to entry %lld does not match the checkpoint "
				     "signed at %s: entries %lld to %lld were rewritten",
				     (long long)expected, tbuf, (long long)res->anchored + 1,
				     (long long)expected);
				goto out;
			}
			res->checkpoints++;
			res->anchored = expected;
		}
		expected++;
	}
	if (ci < ncps) {
		audit_time_format(sorted[ci]->time_us, tbuf);
		fail(res, AUDIT_FAULT_TRUNCATED, expected,
		     "the log ends after entry %lld, but a checkpoint signed at %s covers %lld "
		     "entries: entries from %lld on were removed (truncated)",
		     (long long)expected - 1, tbuf, (long long)sorted[ci]->size,
		     (long long)expected);
		goto out;
	}
	res->ok = true;
	snprintf(res->reason, sizeof res->reason, "ok");
out:
	audit_hasher_free(h);
	free(e);
	free(sorted);
	return rc;
}
