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
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evp_item it;
	err_clear();
	int rc = evparse_postmark((const char *)data, size, &it);
	fuzz_check_event_rc(rc);
	if (rc == ERR_TOOBIG)
		abort();
	if (rc != 0)
		return 0;
	fuzz_check_event_item(&it);
	if (it.kind != EVP_IGNORED) {
		const char *bar = strrchr(it.id, '|');
		int64_t us;
		if (bar == NULL || bar == it.id || parse_time(bar + 1, &us) != 0 || us != it.time_us)
			abort();
	}
	return 0;
}
