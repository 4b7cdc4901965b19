/*
 * release: what an outreach filter request released. The filter decides
 * each entry of a campaign list with the consent domain; this module keys
 * what is kept of the list (its dedupe keys, its keyed digest) and records
 * which contacts a request released, so an auditor can later ask "was
 * contact X released by request R?" (store_release_*).
 */
#ifndef CONSENTD_DOMAIN_RELEASE_H
#define CONSENTD_DOMAIN_RELEASE_H

#include <stddef.h>
#include <stdint.h>

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
int release_find(struct txn *t, const char *release_id, const uint8_t id_raw[16]);

#endif
