/*
 * provsig: how each email provider proves that an inbound event is its own.
 *
 *   SendGrid   ECDSA P-256 with SHA-256 over timestamp header + raw body;
 *              the signature header is base64 DER. The verification key is
 *              kept as SendGrid shows it (base64 of the DER
 *              SubjectPublicKeyInfo) or as PEM.
 *   Mailgun    hex HMAC-SHA256 of timestamp + token under the signing key.
 *   Postmark   HTTP basic auth; the file holds "user:password".
 *   SES (SNS)  RSA PKCS #1 v1.5 over the message's canonical string, with
 *              SHA-1 (SignatureVersion 1) or SHA-256 (2), under the key of
 *              the signing certificate, which the caller fetched from an
 *              SNS host it trusts (service/snscert.c); no key is configured.
 *
 * Key files live in the data folder with mode 0600, like every other key;
 * a file readable by group or others is refused at start. Secrets are kept
 * in this module only and wiped when it is freed. Every comparison of a
 * secret or a MAC is constant-time. A verifier answers 0 or
 * ERR_UNAUTHENTICATED (with a message safe to show the caller); the
 * freshness of the timestamp is the caller's rule (service/domain/provider.c).
 */
#ifndef CONSENTD_CRYPTO_PROVSIG_H
#define CONSENTD_CRYPTO_PROVSIG_H

#include <stdbool.h>
#include <stddef.h>

struct provsig;

/* Loads the configured keys; a NULL or "" path leaves that provider
 * unconfigured. ERR_DENIED for a key file readable by others, ERR_INVALID
 * for one that does not hold a key of the right kind. */
int provsig_open(struct provsig **out, const char *sendgrid_key_file, const char *mailgun_key_file,
		 const char *postmark_auth_file);
void provsig_free(struct provsig *p);

bool provsig_has_sendgrid(const struct provsig *p);
bool provsig_has_mailgun(const struct provsig *p);
bool provsig_has_postmark(const struct provsig *p);

int provsig_sendgrid_verify(const struct provsig *p, const char *timestamp, const char *body, size_t len,
			    const char *signature_b64);
int provsig_mailgun_verify(const struct provsig *p, const char *timestamp, const char *token,
			   const char *signature_hex);
/* authorization: the request's Authorization header, or NULL. */
int provsig_postmark_verify(const struct provsig *p, const char *authorization);

/* Verifies an SNS signature (base64) over msg[0..len) with the public key
 * of cert_pem (an RSA key of 2048 bits or more); version 1 or 2. */
int provsig_sns_verify(const char *cert_pem, size_t pem_len, int version, const char *msg, size_t len,
		       const char *signature_b64);

/* For tests and the fuzz targets: HMAC-SHA256 of msg under key as 64 hex
 * characters and a NUL. */
int provsig_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len, char out[65]);

#endif
