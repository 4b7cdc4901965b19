/*
 * release: keys and records of outreach filter releases. See release.h.
 */
#include "service/domain/release.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/record.h"
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void release_new_id(char id[STORE_ID_CAP])
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, id);
}

void release_id_key(const char *contact_id, uint8_t key[32])
{
	char tagged[CONTACT_ID_BYTES + 4];
	int n = snprintf(tagged, sizeof tagged, "id:%s", contact_id);
	crypto_sha256(tagged, (size_t)n, key);
}

int release_list_digest(const struct txn *t, uint8_t sha[32], char hex[65])
{
	uint8_t mac[FC_HASH_BYTES];
	int rc = fieldcrypt_keyed_hash(t->keys, FC_HASH_LIST, sha, 32, mac) != 0 ? ERR_CRYPTO : 0;
	hex_encode(mac, sizeof mac, hex);
	crypto_wipe(sha, 32);
	return rc;
}

int release_put(struct txn *t, const char *release_id, int64_t chunk, const uint8_t *ids, size_t n_ids)
{
	return store_release_put(t->c, release_id, chunk, ids, n_ids);
}

int release_count(struct txn *t, const char *release_id, int64_t *out)
{
	return store_release_count(t->c, release_id, out);
}

int release_find(struct txn *t, const char *release_id, const uint8_t id_raw[LIMIT_ID_RAW_BYTES])
{
	return store_release_find(t->c, release_id, id_raw);
}

int release_cap_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		     int64_t cap_max, int64_t cap_per_days, bool *held, int64_t *reachable_us)
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	int64_t count = 0, kth = 0;
	int rc;
	*held = false;
	*reachable_us = 0;
	if (cap_max <= 0)
		return 0;
	if (b64url_decode(contact_id, strlen(contact_id), raw, sizeof raw) != LIMIT_ID_RAW_BYTES)
		return err_set(ERR_INVALID, "not a contact id");
	rc = store_release_recent(t->c, raw, purpose, channel,
				  policy_cap_window_start(cap_per_days, t->now_us), cap_max, &count, &kth);
	if (rc == 0)
		*held = policy_cap_reached(cap_max, cap_per_days, count, kth, reachable_us);
	return rc;
}

int release_cap_recheck(struct txn *t, const char *purpose, const char *channel, int64_t cap_max,
			int64_t cap_per_days, const uint8_t *ids, size_t n_ids)
{
	int64_t since = policy_cap_window_start(cap_per_days, t->now_us);
	int64_t *count = NULL, *kth = NULL;
	int rc = 0;
	if (cap_max <= 0 || n_ids == 0)
		return 0;
	/* One batched read for the chunk (one round trip on PostgreSQL). */
	count = calloc(n_ids, sizeof *count);
	kth = calloc(n_ids, sizeof *kth);
	if (count == NULL || kth == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	if (rc == 0)
		rc = store_release_recent_many(t->c, n_ids, (const uint8_t(*)[16])ids, purpose, channel,
					       since, cap_max, count, kth);
	for (size_t i = 0; rc == 0 && i < n_ids; i++)
		if (count[i] >= cap_max)
			rc = err_set(ERR_CONFLICT,
				     "another campaign reached some of these people while this "
				     "list was read; nothing was released: run the filter again");
	free(count);
	free(kth);
	return rc;
}

int release_log_put(struct txn *t, const char *release_id, const char *purpose, const char *channel,
		    const uint8_t *ids, size_t n_ids)
{
	return store_release_log_put(t->c, release_id, purpose, channel, t->now_us, ids, n_ids);
}

int release_summary_put(struct txn *t, const char *release_id, json_t *summary)
{
	char *text = json_dumps(summary, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc = text ? store_release_summary_put(t->c, release_id, t->now_us, text)
		      : err_set(ERR_NOMEM, "out of memory");
	free(text);
	return rc;
}

int release_summary_get(struct txn *t, const char *release_id, json_t **out)
{
	char *text = NULL;
	int64_t at = 0;
	json_error_t jerr;
	int rc = store_release_summary_get(t->c, release_id, &at, &text);
	*out = NULL;
	if (rc == 0) {
		*out = json_loads(text, 0, &jerr);
		if (!json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
			rc = err_set(ERR_IO, "the release summary is not readable");
		} else {
			json_object_set_new(*out, "released_at", json_time(at));
		}
	}
	free(text);
	return rc;
}

static int log_entry_json(void *ctx, const struct store_release_entry *e)
{
	json_t *arr = ctx;
	return json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "release_id", e->release_id,
						    "purpose", e->purpose, "channel", e->channel,
						    "released_at", json_time(e->at_us))) == 0
		       ? 0
		       : err_set(ERR_NOMEM, "out of memory");
}

int release_of_contact_each(struct txn *t, const char *contact_id, store_release_log_cb cb, void *ctx)
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	if (b64url_decode(contact_id, strlen(contact_id), raw, sizeof raw) != LIMIT_ID_RAW_BYTES)
		return err_set(ERR_INVALID, "not a contact id");
	return store_release_log_each(t->c, raw, LIMIT_RELEASES_LISTED, cb, ctx);
}

int release_of_contact_json(struct txn *t, const char *contact_id, json_t **out)
{
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	json_t *arr = json_array();
	int rc = arr ? 0 : err_set(ERR_NOMEM, "out of memory");
	*out = NULL;
	if (rc == 0 && b64url_decode(contact_id, strlen(contact_id), raw, sizeof raw) != LIMIT_ID_RAW_BYTES)
		rc = err_set(ERR_INVALID, "not a contact id");
	if (rc == 0)
		rc = store_release_log_each(t->c, raw, LIMIT_RELEASES_LISTED, log_entry_json, arr);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* The person's own choice on top of the policy's cap (*held and
 * *reachable_us already hold the cap's answer). */
static int choice_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		       bool *held, int64_t *reachable_us)
{
	struct store_frequency fq;
	enum policy_frequency f = POLICY_FREQ_ANY;
	int64_t pmax = 0, pdays = 0, preach = 0;
	bool pheld = false;
	int rc = store_frequency_get(t->c, contact_id, purpose, channel, &fq);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	/* A name this build does not know holds the person back: never fail open. */
	if (policy_frequency_from_name(fq.choice, &f) != 0)
		f = POLICY_FREQ_IMPORTANT;
	policy_frequency_cap(f, &pmax, &pdays);
	if (pmax < 0) {
		*held = true;
		*reachable_us = 0;
		return 0;
	}
	if (pmax > 0 &&
	    (rc = release_cap_held(t, contact_id, purpose, channel, pmax, pdays, &pheld, &preach)) != 0)
		return rc;
	if (pheld) {
		if (!*held || preach > *reachable_us)
			*reachable_us = preach;
		*held = true;
	}
	return 0;
}

int release_outreach_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
			  int64_t cap_max, int64_t cap_per_days, bool with_choice, bool *held,
			  int64_t *reachable_us)
{
	int rc = release_cap_held(t, contact_id, purpose, channel, cap_max, cap_per_days, held, reachable_us);
	if (rc != 0 || !with_choice)
		return rc;
	return choice_held(t, contact_id, purpose, channel, held, reachable_us);
}

int release_outreach_held_many(struct txn *t, size_t n, const char (*ids)[STORE_ID_CAP], const char *purpose,
			       const char *channel, int64_t cap_max, int64_t cap_per_days, bool with_choice,
			       bool *held, int64_t *reachable_us, int *rc_each)
{
	uint8_t(*raw)[16] = NULL;
	int64_t *count = NULL, *kth = NULL;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		held[i] = false;
		reachable_us[i] = 0;
		rc_each[i] = 0;
	}
	if (cap_max > 0 && n > 0) {
		raw = calloc(n, sizeof *raw);
		count = calloc(n, sizeof *count);
		kth = calloc(n, sizeof *kth);
		if (raw == NULL || count == NULL || kth == NULL)
			rc = err_set(ERR_NOMEM, "out of memory");
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (b64url_decode(ids[i], strlen(ids[i]), raw[i], sizeof raw[i]) != 16)
				rc_each[i] = err_set(ERR_INVALID, "not a contact id");
		/* The whole batch in one store call: the same count as
		 * release_cap_held, person by person. */
		if (rc == 0)
			rc = store_release_recent_many(t->c, n, (const uint8_t(*)[16])raw, purpose, channel,
						       policy_cap_window_start(cap_per_days, t->now_us),
						       cap_max, count, kth);
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (rc_each[i] == 0)
				held[i] = policy_cap_reached(cap_max, cap_per_days, count[i], kth[i],
							     &reachable_us[i]);
	}
	for (size_t i = 0; rc == 0 && with_choice && i < n; i++)
		if (rc_each[i] == 0)
			rc_each[i] = choice_held(t, ids[i], purpose, channel, &held[i], &reachable_us[i]);
	free(raw);
	free(count);
	free(kth);
	return rc;
}

int release_choice_set(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
		       enum policy_frequency f)
{
	struct store_frequency fq;
	memset(&fq, 0, sizeof fq);
	snprintf(fq.purpose, sizeof fq.purpose, "%s", purpose);
	snprintf(fq.channel, sizeof fq.channel, "%s", channel);
	snprintf(fq.choice, sizeof fq.choice, "%s", policy_frequency_name(f));
	fq.set_us = t->now_us;
	return store_frequency_put(t->c, contact_id, &fq);
}

static int choice_json(void *ctx, const struct store_frequency *fq)
{
	return json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:o}", "purpose", fq->purpose, "channel",
						    fq->channel, "choice", fq->choice, "set_at",
						    json_time(fq->set_us))) == 0
		       ? 0
		       : err_set(ERR_NOMEM, "out of memory");
}

int release_choices_json(struct txn *t, const char *contact_id, json_t **out)
{
	json_t *arr = json_array();
	int rc = arr ? store_frequency_each(t->c, contact_id, choice_json, arr)
		     : err_set(ERR_NOMEM, "out of memory");
	*out = NULL;
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

/* ---- caps shared by several purposes ---- */

/* Merges the newest-first times b (nb of them) into a (*na of them, room
 * for limit), keeping the limit newest; tmp has room for limit. */
static void merge_newest(int64_t *a, int64_t *na, const int64_t *b, int64_t nb, int64_t limit, int64_t *tmp)
{
	int64_t i = 0, j = 0, k = 0;
	while (k < limit && (i < *na || j < nb))
		tmp[k++] = j >= nb || (i < *na && a[i] >= b[j]) ? a[i++] : b[j++];
	memcpy(a, tmp, (size_t)k * sizeof *a);
	*na = k;
}

int release_counts_many(struct txn *t, size_t n, const uint8_t (*ids)[LIMIT_ID_RAW_BYTES],
			const char *const *purposes, size_t n_purposes, const char *channel, int64_t after_us,
			int64_t limit, int64_t *count, int64_t *kth)
{
	int64_t *top = NULL, *got = NULL, *ntop = NULL, *ngot = NULL, *tmp = NULL;
	int rc = 0;
	if (limit < 1 || limit > POLICY_CAP_MAX)
		return err_set(ERR_INVALID, "a cap counts between 1 and %d releases", POLICY_CAP_MAX);
	/* People per store call: their times fill at most one batch. */
	size_t per = (size_t)(LIMIT_RELEASE_TIMES_BATCH / limit);
	if (per > n)
		per = n;
	if (per == 0)
		return 0;
	top = malloc(per * (size_t)limit * sizeof *top);
	got = malloc(per * (size_t)limit * sizeof *got);
	ntop = malloc(per * sizeof *ntop);
	ngot = malloc(per * sizeof *ngot);
	tmp = malloc((size_t)limit * sizeof *tmp);
	if (top == NULL || got == NULL || ntop == NULL || ngot == NULL || tmp == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	for (size_t s = 0; rc == 0 && s < n; s += per) {
		size_t m = n - s < per ? n - s : per;
		for (size_t j = 0; j < m; j++)
			ntop[j] = 0;
		/* One batched read per purpose; each person's newest times of
		 * every purpose merged into one newest-first list. */
		for (size_t p = 0; rc == 0 && p < n_purposes; p++) {
			rc = store_release_times_many(t->c, m, ids[s], purposes[p], channel, after_us, limit,
						      got, ngot);
			for (size_t j = 0; rc == 0 && j < m; j++)
				merge_newest(top + j * (size_t)limit, &ntop[j], got + j * (size_t)limit,
					     ngot[j], limit, tmp);
		}
		for (size_t j = 0; rc == 0 && j < m; j++) {
			count[s + j] = ntop[j];
			kth[s + j] = ntop[j] > 0 ? top[j * (size_t)limit + (size_t)ntop[j] - 1] : 0;
		}
	}
	free(top);
	free(got);
	free(ntop);
	free(ngot);
	free(tmp);
	return rc;
}

/* The stricter of two answers: held for good (reachable 0) stays so; else
 * the later time. */
static void hold_later(bool *held, int64_t *reachable_us, int64_t cap_reachable_us)
{
	if (*held && *reachable_us == 0)
		return;
	if (!*held || cap_reachable_us > *reachable_us)
		*reachable_us = cap_reachable_us;
	*held = true;
}

int release_shared_held_many(struct txn *t, size_t n, const char (*ids)[STORE_ID_CAP], const char *purpose,
			     const char *channel, bool *held, int64_t *reachable_us, int *rc_each)
{
	uint8_t(*raw)[LIMIT_ID_RAW_BYTES] = NULL;
	int64_t *count = NULL, *kth = NULL;
	struct policy_shared_cap cap;
	int rc = 0;
	for (size_t c = 0; rc == 0 && c < policy_shared_cap_count(t->policy); c++) {
		if (policy_shared_cap_get(t->policy, c, &cap) != 0 ||
		    !policy_shared_cap_covers(&cap, purpose))
			continue;
		if (raw == NULL) {
			raw = calloc(n, sizeof *raw);
			count = calloc(n, sizeof *count);
			kth = calloc(n, sizeof *kth);
			if (raw == NULL || count == NULL || kth == NULL) {
				rc = err_set(ERR_NOMEM, "out of memory");
				break;
			}
			for (size_t i = 0; i < n; i++)
				if (rc_each[i] == 0 && b64url_decode(ids[i], strlen(ids[i]), raw[i],
								     sizeof raw[i]) != LIMIT_ID_RAW_BYTES)
					rc_each[i] = err_set(ERR_INVALID, "not a contact id");
		}
		rc = release_counts_many(
			t, n, (const uint8_t(*)[LIMIT_ID_RAW_BYTES])raw, cap.purposes, cap.n_purposes,
			channel, policy_cap_window_start(cap.per_days, t->now_us), cap.max, count, kth);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			int64_t at = 0;
			if (rc_each[i] == 0 &&
			    policy_cap_reached(cap.max, cap.per_days, count[i], kth[i], &at))
				hold_later(&held[i], &reachable_us[i], at);
		}
	}
	free(raw);
	free(count);
	free(kth);
	return rc;
}

int release_shared_held(struct txn *t, const char *contact_id, const char *purpose, const char *channel,
			bool *held, int64_t *reachable_us)
{
	char id[1][STORE_ID_CAP];
	int rc_one = 0;
	if (snprintf(id[0], sizeof id[0], "%s", contact_id) >= (int)sizeof id[0])
		return err_set(ERR_INVALID, "not a contact id");
	int rc = release_shared_held_many(t, 1, (const char(*)[STORE_ID_CAP])id, purpose, channel, held,
					  reachable_us, &rc_one);
	return rc != 0 ? rc : rc_one;
}

int release_shared_recheck(struct txn *t, const char *purpose, const char *channel, const uint8_t *ids,
			   size_t n_ids)
{
	int64_t *count = NULL, *kth = NULL;
	struct policy_shared_cap cap;
	int rc = 0;
	for (size_t c = 0; rc == 0 && n_ids > 0 && c < policy_shared_cap_count(t->policy); c++) {
		if (policy_shared_cap_get(t->policy, c, &cap) != 0 ||
		    !policy_shared_cap_covers(&cap, purpose))
			continue;
		if (count == NULL) {
			count = calloc(n_ids, sizeof *count);
			kth = calloc(n_ids, sizeof *kth);
			if (count == NULL || kth == NULL) {
				rc = err_set(ERR_NOMEM, "out of memory");
				break;
			}
		}
		rc = release_counts_many(
			t, n_ids, (const uint8_t(*)[LIMIT_ID_RAW_BYTES])ids, cap.purposes, cap.n_purposes,
			channel, policy_cap_window_start(cap.per_days, t->now_us), cap.max, count, kth);
		for (size_t i = 0; rc == 0 && i < n_ids; i++)
			if (count[i] >= cap.max)
				rc = err_set(ERR_CONFLICT,
					     "another campaign reached some of these people while this "
					     "list was read; nothing was released: run the filter again");
	}
	free(count);
	free(kth);
	return rc;
}
