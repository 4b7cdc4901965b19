/*
 * snscert: the outbound HTTPS requests that Amazon SNS messages call for,
 * with libcurl: fetching a signing certificate (SigningCertURL) and
 * confirming a subscription (a GET of its SubscribeURL). The caller has
 * checked each URL against the SES configuration already
 * (provider_sns_url_ok); this module adds the transport rules:
 *
 *   - https only, TLS peer and host verified (the system's CAs, or the
 *     test-only events.ses.ca_file), no redirects, no proxy from the
 *     environment, LIMIT_SNS_FETCH_SECONDS for the whole request;
 *   - every address curl is about to connect to must be public
 *     (webhook_addr_public), unless a test CA file is set, which also
 *     admits loopback;
 *   - a certificate is at most LIMIT_SNS_CERT_BYTES; a larger answer is an
 *     error, never cut to fit;
 *   - certificates are cached by URL (LIMIT_SNS_CERT_CACHE of them, each for
 *     LIMIT_SNS_CERT_SECONDS, the least recently used replaced first), so
 *     SNS's steady stream costs one fetch per certificate. A certificate
 *     is public data: the cache holds nothing secret.
 *
 * Thread-safe: the HTTP workers share one struct snscert.
 */
#ifndef CONSENTD_SNSCERT_H
#define CONSENTD_SNSCERT_H

#include <stddef.h>

struct snscert;

/* ca_file: "" or NULL for the system's trust store. */
int snscert_open(struct snscert **out, const char *ca_file);
void snscert_free(struct snscert *sc);

/* The PEM at url (from the cache or fetched) into *pem, NUL-terminated,
 * the caller's to free. ERR_UNAVAILABLE when it cannot be fetched,
 * ERR_TOOBIG past LIMIT_SNS_CERT_BYTES. Matches provider_cert_fetch. */
int snscert_get(void *sc, const char *url, char **pem, size_t *len);

/* GETs url (a SubscribeURL); 0 on a 2xx answer, ERR_UNAVAILABLE otherwise. */
int snscert_confirm(struct snscert *sc, const char *url);

#endif
