/*
 * fuzz_events_postmark: Postmark webhook bodies through evparse_postmark
 * (service/evparse.c), pure, no keys.
 *
 * Invariants checked (abort on violation):
 * - the result is 0 or ERR_INVALID, set as the current error;
 * - on success the item satisfies what every item must (see check_item),
 *   and a suppressing or soft item's id is "MessageID|time" with a time
 *   that parses as RFC 3339.
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
	err_clear();
	int rc = evparse_postmark((const char *)data, size, &it);
	check_rc(rc);
	if (rc == ERR_TOOBIG)
		abort();
	if (rc != 0)
		return 0;
	check_item(&it);
	if (it.kind != EVP_IGNORED) {
		const char *bar = strrchr(it.id, '|');
		int64_t us;
		if (bar == NULL || bar == it.id || parse_time(bar + 1, &us) != 0 || us != it.time_us)
			abort();
	}
	return 0;
}
