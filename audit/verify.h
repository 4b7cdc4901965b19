/*
 * verify: checks an audit log, read as a stream of entries, against its hash
 * chain and its signed checkpoints, and names the first place it fails.
 *
 * Invariants:
 * - Streaming: entries are read once, in order, through a callback; memory is
 *   O(1) in the number of entries (O(n) only in the number of checkpoints).
 * - A result is "ok" only if every entry was read, seqs run 1, 2, 3, ... with
 *   no gap, each entry's prev_hash is the previous entry's hash (zeros for
 *   seq 1), each entry's hash is the hash of its own content, and every
 *   checkpoint is validly signed by a known key and its root is the hash of
 *   entry number size.
 * - first_bad_seq is the first sequence number at which the log, as read,
 *   stops being consistent. Where the chain alone cannot tell which of two
 *   entries is the forgery (a broken link at N means N or N-1 was inserted,
 *   replaced or moved), the reason says so.
 */
#ifndef CONSENTD_AUDIT_VERIFY_H
#define CONSENTD_AUDIT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"

/* Returns 1 and fills *out with the next entry, 0 at the end, or a negative
 * error code (with err_set) if the entries cannot be read. */
typedef int (*audit_next_fn)(void *ctx, struct audit_entry *out);

enum audit_fault {
	AUDIT_FAULT_NONE = 0,
	AUDIT_FAULT_EDITED,	/* an entry's content does not match its hash */
	AUDIT_FAULT_LINK,	/* prev_hash is not the previous entry's hash */
	AUDIT_FAULT_DELETED,	/* seqs skip: entries are missing */
	AUDIT_FAULT_REORDERED,	/* seqs go backwards or repeat */
	AUDIT_FAULT_MALFORMED,	/* an entry cannot be encoded (bad seq or string) */
	AUDIT_FAULT_TRUNCATED,	/* a signed checkpoint covers more entries than exist */
	AUDIT_FAULT_REWRITTEN,	/* a chain head differs from its signed checkpoint */
	AUDIT_FAULT_SIGNATURE,	/* a checkpoint is malformed, unsigned or badly signed */
	AUDIT_FAULT_READ,	/* the entries could not be read to the end */
	AUDIT_FAULT_UNANCHORED, /* entries exist but no signed checkpoint covers any */
	AUDIT_FAULT_ANCHOR,	/* an anchor file is missing, older than another, or forged */
	AUDIT_FAULT_DIVERGED,	/* the stored head is not the head the writer holds */
};

#define AUDIT_REASON_BYTES 320

struct audit_verify_result {
	bool ok;
	int64_t entries;       /* entries read and found consistent */
	int64_t checkpoints;   /* checkpoints whose signature and root matched */
	int64_t anchored;      /* largest size covered by a verified checkpoint */
	int64_t first_bad_seq; /* 0 when ok, or when no entry is to blame */
	enum audit_fault fault;
	char reason[AUDIT_REASON_BYTES]; /* a sentence for people; "ok" when ok */
	uint8_t head[AUDIT_HASH_BYTES];	 /* hash of the last consistent entry */
};

/*
 * Reads every entry through next(ctx, &entry) and checks it as described at
 * the top of this file. cps (ncps of them, any order) are the signed
 * checkpoints; keys (nkeys of them) the public keys that may have signed them,
 * chosen by key id. With no checkpoints the chain is still checked, but
 * nothing anchors it: anchored stays 0.
 *
 * Returns 0 when a verdict was reached, whatever it is (see res->ok), and a
 * negative code only when it could not run (out of memory, bad arguments).
 * If next fails, the verdict is "not ok" with fault AUDIT_FAULT_READ and the
 * error's message as the reason; the return value is still 0.
 */
int audit_verify(audit_next_fn next, void *ctx, const struct audit_checkpoint *cps, size_t ncps,
		 const struct audit_pubkey *const *keys, size_t nkeys, struct audit_verify_result *res);

/* Pulls the next checkpoint in size order: 1 and *out filled, 0 at the end,
 * or a negative error code (with err_set). */
typedef int (*audit_next_cp_fn)(void *ctx, struct audit_checkpoint *out);

/*
 * The general form. Entries are read from start_seq + 1 on, linking to
 * start_hash (zeros and 0 for the whole trail): a verifier that has already
 * checked a prefix up to a signed checkpoint resumes there. Checkpoints come
 * from two sources merged by size: cps (few, any order: anchor files, an
 * auditor's own copy; their signatures are checked before any entry) and
 * next_cp (many, in size order: the database's, pulled one at a time so
 * memory stays O(1) whatever their number; each signature is checked when it
 * is reached). Checkpoints at or below start_seq are checked for their
 * signature only.
 */
struct audit_verify_input {
	audit_next_fn next;
	void *ctx;
	audit_next_cp_fn next_cp; /* may be NULL */
	void *cp_ctx;
	const struct audit_checkpoint *cps;
	size_t ncps;
	const struct audit_pubkey *const *keys;
	size_t nkeys;
	int64_t start_seq;
	uint8_t start_hash[AUDIT_HASH_BYTES];
};

int audit_verify_run(const struct audit_verify_input *in, struct audit_verify_result *res);

/* A short stable name for a fault ("edited", "deleted", ...). */
const char *audit_fault_name(enum audit_fault f);

#endif
