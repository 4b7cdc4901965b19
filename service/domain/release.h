/*
 * release: what an outreach filter request released. The filter decides
 * each entry of a campaign list with the consent domain; this module keys
 * what is kept of the list (its dedupe keys, its keyed digest) and records
 * which contacts a request released, so an auditor can later ask "was
 * contact X released by request R?" (store_release_*).
 */
#ifndef CONSENTD_DOMAIN_RELEASE_H
#define CONSENTD_DOMAIN_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "service/base/limits.h"
#include "service/domain/txn.h"
#include "service/store/store.h"

/* A new random release id. */
void release_new_id(char id[STORE_ID_CAP]);
/* The dedupe key of an entry given by contact id (a hash of "id:" + id). */
void release_id_key(const char *contact_id, uint8_t key[32]);
/* The list's keyed digest for the trail and the reply, as 64 hex digits:
 * HMAC-SHA256 under a key derived from the index key, over the body's
 * SHA-256 (a plain SHA-256 of a short list gives its addresses away).
 * ERR_CRYPTO when the key is unavailable. sha is wiped. */
int release_list_digest(const struct txn *t, uint8_t sha[32], char hex[65]);
/* On the writer: one sorted chunk of raw 16-byte ids released by id. */
int release_put(struct txn *t, const char *release_id, int64_t chunk, const uint8_t *ids, size_t n_ids);
/* On a reader: how many contacts release_id released, and whether id_raw
 * is one of them (0) or not (ERR_NOTFOUND). */
int release_count(struct txn *t, const char *release_id, int64_t *out);
int release_find(struct txn *t, const char *release_id, const uint8_t id_raw[LIMIT_ID_RAW_BYTES]);

/*
 * Frequency caps. A purpose's cap (policy: frequency_cap) limits how many
 * real filter runs may release one person for (purpose, channel) within a
 * window; releases are counted per contact id, whatever identifier a list
 * used. release_cap_held decides, on a reader, whether the cap holds
 * contact_id back at t->now_us, and if so when the person is reachable
 * again (*reachable_us). No cap: *held is false, nothing is read.
 */
int release_cap_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		     int64_t cap_max, int64_t cap_per_days, bool *held, int64_t *reachable_us);
/* On the writer, before release_log_put: whether every one of n_ids raw
 * ids is still under the cap, counting what committed since the list was
 * decided on a reader (another filter may have released the same people
 * meanwhile). ERR_CONFLICT when one is not: the request must release no
 * one and be run again. The count is then exact, whatever runs alongside. */
int release_cap_recheck(struct txn *t, const char *purpose, const char *channel, int64_t cap_max,
			int64_t cap_per_days, const uint8_t *ids, size_t n_ids);
/*
 * The person's own frequency choice (policy_frequency, offered on the
 * preference page for purposes with frequency_choice). The stricter of the
 * person's choice and the policy's cap applies: release_outreach_held holds
 * the person back when either does, and *reachable_us is the later of the
 * two times (0 when the choice is "important": no campaign reaches them).
 * with_choice false skips the choice (the purpose offers none).
 */
int release_outreach_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
			  int64_t cap_max, int64_t cap_per_days, bool with_choice, bool *held,
			  int64_t *reachable_us);
/* The same for n people at once, in one store call for the policy's cap
 * (one round trip on PostgreSQL); the choices are read person by person.
 * A person whose answer could not be read gets rc_each[i] != 0 (the caller
 * denies them); the return is 0 or an error for the whole batch. */
int release_outreach_held_many(struct txn *t, size_t n, const char (*ids)[STORE_ID_CAP], const char *purpose,
			       const char *channel, int64_t cap_max, int64_t cap_per_days, bool with_choice,
			       bool *held, int64_t *reachable_us, int *rc_each);
/* On the writer: records the person's choice for (purpose, channel). */
int release_choice_set(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		       enum policy_frequency f);
/* The person's current choices as a new JSON array ({purpose, channel,
 * choice, set_at}). */
int release_choices_json(struct txn *t, const char *contact_id, json_t **out);
/* On the writer: the per-person log of one sorted chunk of released ids. */
int release_log_put(struct txn *t, const char *release_id, const char *purpose, const char *channel,
		    const uint8_t *ids, size_t n_ids);
/* On the writer: the request's summary (JSON without personal data). */
int release_summary_put(struct txn *t, const char *release_id, json_t *summary);
/* On a reader: the summary of release_id (ERR_NOTFOUND for an unknown id),
 * as a new JSON object with "released_at". */
int release_summary_get(struct txn *t, const char *release_id, json_t **out);
/* On a reader: the releases that included contact_id, newest first
 * (at most LIMIT_RELEASES_LISTED), each to cb (stop with nonzero), or as
 * a new JSON array. */
int release_of_contact_each(struct txn *t, const char *contact_id, store_release_log_cb cb, void *ctx);
int release_of_contact_json(struct txn *t, const char *contact_id, json_t **out);

/*
 * Caps shared by several purposes (policy: frequency_caps, "all our
 * marketing, at most three a week"): counted per person and channel over
 * every purpose a cap lists, from the same release log, on top of each
 * purpose's own cap and the person's choice.
 *
 * release_counts_many: for each of n raw ids, how many releases on channel
 * for any of the n_purposes purposes came after after_us, counting at most
 * limit (count[i]), and the time of the last one counted (kth[i]: the
 * limit-th newest when count[i] == limit), as store_release_recent answers
 * for one purpose. limit is at most POLICY_CAP_MAX.
 */
int release_counts_many(struct txn *t, size_t n, const uint8_t (*ids)[LIMIT_ID_RAW_BYTES],
			const char *const *purposes, size_t n_purposes, const char *channel, int64_t after_us,
			int64_t limit, int64_t *count, int64_t *kth);
/* For a block of n people (contact ids) of an outreach for (purpose,
 * channel): each shared cap of t->policy that lists purpose holds person i
 * back when it is reached. held[i], reachable_us[i] and rc_each[i] come in
 * holding the answer so far (release_outreach_held_many's, so the same
 * arrays chain) and leave holding the stricter one: a person held with
 * reachable_us 0 (their "important" choice) stays so; otherwise the latest
 * time wins. A person with rc_each[i] != 0 is not counted (deny them); one
 * whose id is not a contact id gets ERR_INVALID there. The return is 0 or
 * an error for the whole block. Nothing is read when no cap lists purpose. */
int release_shared_held_many(struct txn *t, size_t n, const char (*ids)[STORE_ID_CAP], const char *purpose,
			     const char *channel, bool *held, int64_t *reachable_us, int *rc_each);
/* The same for one person (the single check about an outreach). */
int release_shared_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
			bool *held, int64_t *reachable_us);
/* On the writer, before release_log_put, like release_cap_recheck: every
 * one of n_ids raw ids is still under every shared cap that lists purpose,
 * counting what committed since the list was decided; ERR_CONFLICT when
 * one is not (the request releases no one and is run again). */
int release_shared_recheck(struct txn *t, const char *purpose, const char *channel, const uint8_t *ids,
			   size_t n_ids);

#endif
