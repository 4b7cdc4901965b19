/*
 * fuzz_events_sendgrid: SendGrid Event Webhook batches through
 * evparse_sendgrid (service/evparse.c), pure, no keys.
 *
 * Invariants checked (abort on violation):
 * - the result is 0, ERR_INVALID or ERR_TOOBIG, set as the current error;
 * - on success *n is at most the capacity; every item is NUL-terminated,
 *   a suppressing item has reason bounce, complaint or unsubscribe, and a
 *   suppressing or soft item has a valid email address and an event id;
 * - on failure *n is 0 (a batch is taken whole or not at all).
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

#define CAP 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct evp_item items[CAP];
	size_t n = 99;
	err_clear();
	int rc = evparse_sendgrid((const char *)data, size, items, CAP, &n);
	check_rc(rc);
	if (rc != 0) {
		if (n != 0)
			abort();
		return 0;
	}
	if (n > CAP)
		abort();
	for (size_t i = 0; i < n; i++)
		check_item(&items[i]);
	return 0;
}
