/*
 * fuzz_linktoken: the preference-token and CSRF parsers (parse only: no
 * keys, no database). Any input must either parse into a well-formed token
 * whose fields agree with the bytes, or be refused with ERR_INVALID.
 */
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/linktoken.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): these must hold in release builds too. */
#define CHECK(x)                                                                                             \
	do {                                                                                                 \
		if (!(x))                                                                                    \
			abort();                                                                             \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linktoken t;
	struct linktoken_csrf c;
	const char *s = (const char *)data;
	int rc = linktoken_parse(s, size, &t);
	if (rc == 0) {
		CHECK(t.version == LINKTOKEN_VERSION);
		CHECK(t.expires_s > 0);
		CHECK(memcmp(t.id, t.payload + 1, LINKTOKEN_ID_BYTES) == 0);
		/* Canonical: the token re-encodes to exactly the input. */
		char again[LINKTOKEN_CAP];
		size_t n = b64url_encode(t.payload, sizeof t.payload, again);
		again[n++] = '.';
		n += b64url_encode(t.mac, sizeof t.mac, again + n);
		CHECK(n == size && memcmp(again, s, size) == 0);
		char id[LINKTOKEN_ID_TEXT_CAP];
		linktoken_id_text(t.id, id);
		CHECK(strlen(id) == 22);
	} else {
		CHECK(rc == ERR_INVALID);
	}
	rc = linktoken_csrf_parse(s, size, &c);
	CHECK(rc == 0 || rc == ERR_INVALID);
	return 0;
}
