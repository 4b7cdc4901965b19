/*
 * linktoken: the signed, expiring, revocable tokens in a customer's
 * preference and unsubscribe links, and the per-page CSRF values of the
 * preference centre's forms.
 *
 * A link token is
 *
 *   base64url(payload) "." base64url(HMAC-SHA256(link key, tag | payload))
 *   payload = version (1 byte, 1) | link id (16 random bytes) | expiry (8 bytes,
 *             big-endian unix seconds)
 *
 * so it names only a random link id: the contact id is not in it, and the
 * link row (service/store/store.h, struct store_link) maps the id to the
 * contact, its scope and its revocation. The link key is derived from the
 * index key (FC_HASH_LINK), which master-key rotation leaves alone, so links
 * survive `keys rotate`. MACs are compared in constant time.
 *
 * A CSRF value is base64url(time (8) | nonce (12) | MAC (16)) with the MAC over
 * the link id, time and nonce: it is bound to one link, expires, and the
 * caller refuses a nonce it has seen before (replay).
 *
 * linktoken_parse and linktoken_csrf_parse are pure (no keys, no I/O) and are
 * what tests/fuzz/fuzz_linktoken.c exercises.
 */
#ifndef CONSENTD_LINKTOKEN_H
#define CONSENTD_LINKTOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keyring;

#define LINKTOKEN_VERSION 1
#define LINKTOKEN_ID_BYTES 16
#define LINKTOKEN_PAYLOAD_BYTES (1 + LINKTOKEN_ID_BYTES + 8)
#define LINKTOKEN_MAC_BYTES 32
#define LINKTOKEN_CAP 96	 /* the text form with its NUL (78 characters) */
#define LINKTOKEN_ID_TEXT_CAP 23 /* base64url of the id with its NUL */

#define LINKTOKEN_CSRF_NONCE_BYTES 12
#define LINKTOKEN_CSRF_MAC_BYTES 16
#define LINKTOKEN_CSRF_BYTES (8 + LINKTOKEN_CSRF_NONCE_BYTES + LINKTOKEN_CSRF_MAC_BYTES)
#define LINKTOKEN_CSRF_CAP 64

struct linktoken {
	uint8_t version;
	uint8_t id[LINKTOKEN_ID_BYTES];
	int64_t expires_s;
	uint8_t payload[LINKTOKEN_PAYLOAD_BYTES];
	uint8_t mac[LINKTOKEN_MAC_BYTES];
};

struct linktoken_csrf {
	int64_t time_s;
	uint8_t nonce[LINKTOKEN_CSRF_NONCE_BYTES];
	uint8_t mac[LINKTOKEN_CSRF_MAC_BYTES];
};

/* Shape only: exactly one '.', canonical base64url halves of the right
 * lengths, a known version. ERR_INVALID otherwise; the MAC is not checked. */
int linktoken_parse(const char *s, size_t len, struct linktoken *out);

/* A new token for link id valid until expires_s, into out. */
int linktoken_make(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES], int64_t expires_s,
		   char out[LINKTOKEN_CAP]);

/* 0 when the MAC matches and now_s is before the expiry; ERR_DENIED when not. */
int linktoken_verify(const struct keyring *kr, const struct linktoken *t, int64_t now_s);

/* The link id as base64url (the preference_link primary key). */
void linktoken_id_text(const uint8_t id[LINKTOKEN_ID_BYTES], char out[LINKTOKEN_ID_TEXT_CAP]);

/* CSRF values for link id, issued at now_s with a fresh nonce. */
int linktoken_csrf_make(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES], int64_t now_s,
			char out[LINKTOKEN_CSRF_CAP]);
int linktoken_csrf_parse(const char *s, size_t len, struct linktoken_csrf *out);
/* 0 when the MAC matches link id and the value is at most max_age_s old
 * (and not from the future); ERR_DENIED when not. Replay is the caller's. */
int linktoken_csrf_verify(const struct keyring *kr, const uint8_t id[LINKTOKEN_ID_BYTES],
			  const struct linktoken_csrf *c, int64_t now_s, int64_t max_age_s);

#endif
