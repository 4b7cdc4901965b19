/*
 * store_order: which consent event is the current state. This file holds the
 * one rule that decides it; store_consent_put applies it on the single
 * writer, and nothing else (no SQL string, no handler) compares events.
 *
 * Every event carries two times: `at`, when the sender says it happened
 * (the original time of an import, or a client's clock, up to five minutes
 * ahead of ours), and `recorded`, when consentd took it. Only the second is
 * ours. So events are ordered by an effective time that never exceeds the
 * recorded one, and wherever the two times disagree the answer is the one
 * that contacts nobody by mistake:
 *
 *   1. A withdrawal or refusal recorded after a grant replaces it, whatever
 *      either claims as `at`: a claimed time (a clock ahead, a clock
 *      behind, a late sync) can never keep a "yes" alive against a later
 *      "no".
 *   2. Otherwise the event with the later effective time, min(at, recorded),
 *      is current. A back-dated event (an import, a replayed receipt) joins
 *      the history and never overrides a state recorded after its time.
 *   3. Equal effective times go to the more restrictive state: withdrawn or
 *      refused, then the grant that expires first (it is expired sooner),
 *      then a grant that never expires.
 *   4. Still equal: the event recorded later (the newcomer) wins.
 *
 * Pure: no SQLite, no clock, so tests/unit/test_store.c can table-test it.
 */
#include "service/store/store.h"

#include <string.h>

int64_t store_consent_effective_us(const struct store_consent *cs)
{
	return cs->at_us < cs->recorded_us ? cs->at_us : cs->recorded_us;
}

static bool is_restrictive(const struct store_consent *cs)
{
	return strcmp(cs->status, "granted") != 0;
}

/* A grant that never expires (0) is the least restrictive of all. */
static int64_t expiry_or_never(const struct store_consent *cs)
{
	return cs->expires_us == 0 ? INT64_MAX : cs->expires_us;
}

bool store_consent_supersedes(const struct store_consent *next, const struct store_consent *cur)
{
	if (is_restrictive(next) && !is_restrictive(cur))
		return true; /* rule 1 */
	int64_t tn = store_consent_effective_us(next), tc = store_consent_effective_us(cur);
	if (tn != tc)
		return tn > tc; /* rule 2 */
	if (is_restrictive(next) != is_restrictive(cur))
		return is_restrictive(next); /* rule 3: a "no" beats a "yes" */
	if (!is_restrictive(next) && expiry_or_never(next) != expiry_or_never(cur))
		return expiry_or_never(next) < expiry_or_never(cur); /* rule 3: expires first */
	return true; /* rule 4 */
}
