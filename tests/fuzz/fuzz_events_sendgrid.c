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
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct evp_item items[CAP];
	size_t n = 99;
	err_clear();
	int rc = evparse_sendgrid((const char *)data, size, items, CAP, &n);
	fuzz_check_event_rc(rc);
	if (rc != 0) {
		if (n != 0)
			abort();
		return 0;
	}
	if (n > CAP)
		abort();
	for (size_t i = 0; i < n; i++)
		fuzz_check_event_item(&items[i]);
	return 0;
}
