/*
 * fuzz_events_mailgun: Mailgun webhook bodies through evparse_mailgun
 * (service/evparse.c), pure, no keys.
 *
 * Invariants checked (abort on violation):
 * - the result is 0 or ERR_INVALID, set as the current error;
 * - on success the item satisfies what every item must (see check_item),
 *   its id is the signature's token, the timestamp is digits only, and
 *   every signature field is NUL-terminated and non-empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/evparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What every accepted item must satisfy. */
static void check_item(const struct evp_item *it)
{
	char norm[EVP_EMAIL_CAP];
	if (memchr(it->email, '\0', sizeof it->email) == NULL || memchr(it->id, '\0', sizeof it->id) == NULL ||
	    memchr(it->group, '\0', sizeof it->group) == NULL || it->reason == NULL || it->time_us < 0)
		abort();
	switch (it->kind) {
	case EVP_SUPPRESS:
		if (strcmp(it->reason, "bounce") != 0 && strcmp(it->reason, "complaint") != 0 &&
		    strcmp(it->reason, "unsubscribe") != 0)
			abort();
		/* fall through */
	case EVP_SOFT:
		if (normalize_email(it->email, strlen(it->email), norm, sizeof norm) != 0 || it->id[0] == '\0')
			abort();
		if (it->kind == EVP_SOFT && it->reason[0] != '\0')
			abort();
		break;
	case EVP_IGNORED:
		if (it->reason[0] != '\0')
			abort();
		break;
	default:
		abort();
	}
}

static void check_rc(int rc)
{
	if (rc != 0 && ((rc != ERR_INVALID && rc != ERR_TOOBIG) || err_code() != rc))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evp_item it;
	struct evp_mailgun_sig sig;
	err_clear();
	int rc = evparse_mailgun((const char *)data, size, &it, &sig);
	check_rc(rc);
	if (rc == ERR_TOOBIG)
		abort();
	if (rc != 0)
		return 0;
	check_item(&it);
	if (memchr(sig.timestamp, '\0', sizeof sig.timestamp) == NULL || memchr(sig.token, '\0', sizeof sig.token) == NULL ||
	    memchr(sig.signature, '\0', sizeof sig.signature) == NULL || sig.timestamp[0] == '\0' ||
	    sig.token[0] == '\0' || sig.signature[0] == '\0' || strcmp(it.id, sig.token) != 0)
		abort();
	if (strspn(sig.timestamp, "0123456789") != strlen(sig.timestamp))
		abort();
	return 0;
}
