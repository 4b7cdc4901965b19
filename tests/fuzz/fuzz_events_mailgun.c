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
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evp_item it;
	struct evp_mailgun_sig sig;
	err_clear();
	int rc = evparse_mailgun((const char *)data, size, &it, &sig);
	fuzz_check_event_rc(rc);
	if (rc == ERR_TOOBIG)
		abort();
	if (rc != 0)
		return 0;
	fuzz_check_event_item(&it);
	if (memchr(sig.timestamp, '\0', sizeof sig.timestamp) == NULL ||
	    memchr(sig.token, '\0', sizeof sig.token) == NULL ||
	    memchr(sig.signature, '\0', sizeof sig.signature) == NULL || sig.timestamp[0] == '\0' ||
	    sig.token[0] == '\0' || sig.signature[0] == '\0' || strcmp(it.id, sig.token) != 0)
		abort();
	if (strspn(sig.timestamp, "0123456789") != strlen(sig.timestamp))
		abort();
	return 0;
}
