/*
 * outreach: the campaign filter's rules, one list at a time. The handler
 * (h_outreach.c) parses the query and headers and renders; this module
 * decides every entry, writes the result lines into an encrypted spill
 * (service/crypto/spill.c) and, on the writer, records what was released.
 *
 * Entries are decided in blocks of LIMIT_FILTER_BLOCK: the entries of a block
 * are keyed (blind index and suppression hash, or the contact id) and
 * deduplicated as they arrive, then looked up together, sorted by blind
 * index so the B-tree is walked in order (and, on PostgreSQL, in one round
 * trip per block), then decided in list order with the same
 * policy_decide_contact() the single check uses, so the two always agree
 * and the reply keeps the list's order. Frequency caps are counted for the
 * block's allowed people together too (release_outreach_held_many).
 *
 *   outreach_new ─> (outreach_body, outreach_entry*)* ─> outreach_end
 *     ─> outreach_put (summary) ─> outreach_reply_take  (reply, reader)
 *     ─> outreach_record                               (writer, one txn)
 *
 * Memory is bounded whatever the list size: one block (its arena of
 * echoed entries is at most LIMIT_FILTER_ARENA_BYTES), two spill records, and
 * two dedupe sets of 8-byte digests (the entries, and the contacts answered
 * allowed, so one person named by id and by email is allowed once), each
 * doubling up to LIMIT_FILTER_DEDUPE_SLOTS; a list with more distinct
 * entries is ERR_TOOBIG.
 *
 * An entry that cannot be decided (a store error) is denied with reason
 * "error", never allowed.
 */
#ifndef CONSENTD_DOMAIN_OUTREACH_H
#define CONSENTD_DOMAIN_OUTREACH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/policy.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

struct outreach_opts {
	const char *role;
	char purpose[STORE_NAME_CAP], channel[STORE_NAME_CAP];
	int64_t cap_max, cap_per_days; /* the purpose's frequency cap; 0: none */
	bool frequency_choice;	       /* the purpose lets people choose how often */
	bool only_allowed;	       /* leave denied entries out of the reply */
	bool csv_out;		       /* CSV records instead of NDJSON lines */
	int64_t now_s;
};

struct outreach_counts {
	uint64_t total, allowed, denied, duplicates, invalid, errors, released;
	uint64_t same_person, held_by_cap;
	uint64_t decided; /* distinct entries decided so far (blocks done) */
	uint64_t reasons[POLICY_REASON_COUNT];
};

struct outreach;

/* A new filter run deciding on t (borrowed for the run's life; t->c may be
 * changed between calls), its spills in dir. */
int outreach_new(struct outreach **out, struct txn *t, const struct outreach_opts *opts, const char *dir);
/* The next piece of the raw body, for the list's digest. */
void outreach_body(struct outreach *o, const void *data, size_t len);
/* One entry of the list (value borrowed for the call), or an invalid one
 * (value NULL, error why). 0, ERR_TOOBIG past the dedupe bound, or a spill
 * error; a store error denies the entry instead. */
int outreach_entry(struct outreach *o, uint64_t line, json_t *value, const char *error);
/* The list has ended: decides the last block. */
int outreach_end(struct outreach *o);
const struct outreach_counts *outreach_counts(const struct outreach *o);
/* The list's keyed digest as 64 hex digits (release_list_digest). */
int outreach_list_digest(struct outreach *o, char hex[65]);
/* Appends raw text (the summary line) to the reply. */
int outreach_put(struct outreach *o, const char *text, size_t len);
/* Ends the reply and hands it over: *reply is read with outreach_reply_read
 * and freed with outreach_reply_free (the http reader pair). */
int outreach_reply_take(struct outreach *o, void **reply);
ssize_t outreach_reply_read(void *reply, char *buf, size_t cap);
void outreach_reply_free(void *reply);
/* On the writer, in the audit entry's transaction: the release record of
 * release_id (sorted chunks of released ids), the frequency caps rechecked
 * (ERR_CONFLICT when another run used the allowance meanwhile), the
 * per-person log, and the summary. */
int outreach_record(struct outreach *o, struct txn *w, const char *release_id, json_t *summary);
void outreach_free(struct outreach *o);

#endif
