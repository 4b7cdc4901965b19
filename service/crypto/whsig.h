/*
 * whsig: Standard Webhooks signatures (https://www.standardwebhooks.com/),
 * the format consentd signs its outbound webhooks in.
 *
 * An endpoint's secret is "whsec_" followed by the standard base64 of its
 * random key bytes. A signature is "v1," followed by the standard base64 of
 * HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>"). The key
 * bytes are the caller's; nothing here keeps or logs them.
 */
#ifndef CONSENTD_WHSIG_H
#define CONSENTD_WHSIG_H

#include <stddef.h>
#include <stdint.h>

#define WHSIG_KEY_BYTES 24  /* random bytes of a secret consentd makes */
#define WHSIG_KEY_MAX 64    /* the longest key a secret may decode to */
#define WHSIG_SECRET_CAP 96 /* "whsec_" + base64 of WHSIG_KEY_MAX bytes + NUL */
#define WHSIG_SIG_CAP 64    /* "v1," + base64 of 32 bytes + NUL */

/* A new secret: WHSIG_KEY_BYTES random bytes, formatted. */
int whsig_secret_new(char out[WHSIG_SECRET_CAP]);
/* The key bytes of a secret ("whsec_" + base64); ERR_INVALID when malformed. */
int whsig_secret_key(const char *secret, uint8_t key[WHSIG_KEY_MAX], size_t *key_len);
/* out = "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)). */
int whsig_sign(const uint8_t *key, size_t key_len, const char *id, int64_t timestamp, const char *body,
	       size_t body_len, char out[WHSIG_SIG_CAP]);

#endif
