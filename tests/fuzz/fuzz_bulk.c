/*
 * fuzz_bulk: the streaming bulk reader on arbitrary bytes, in every format.
 *
 * The first byte picks the format and the chunk size; the rest is the body,
 * fed in chunks. Invariants checked (abort on violation): an item is either
 * valid (a value, no error) or invalid (an error, no value); line numbers
 * never go backwards; feeding the same body in one piece yields the same
 * items and the same result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "service/base/error.h"
#include "service/bulk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint64_t last_line, n;
	uint64_t hash;
};

static int sink_cb(void *ctx, const struct bulk_item *it)
{
	struct sink *s = ctx;
	if ((it->value == NULL) == (it->error == NULL))
		abort();
	if (it->line < s->last_line)
		abort();
	s->last_line = it->line;
	s->n++;
	s->hash = s->hash * 1099511628211u + it->line;
	if (it->value != NULL) {
		char *t = json_dumps(it->value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
		for (char *p = t; p && *p; p++)
			s->hash = s->hash * 1099511628211u + (unsigned char)*p;
		free(t);
	}
	return 0;
}

static int run_once(enum bulk_format fmt, enum bulk_csv_header hdr, const uint8_t *body, size_t len,
		    size_t step, struct sink *s)
{
	struct bulk_reader *r = NULL;
	memset(s, 0, sizeof *s);
	if (bulk_reader_new(&r, fmt, hdr, sink_cb, s) != 0)
		return ERR_NOMEM;
	int rc = 0;
	for (size_t pos = 0; rc == 0 && pos < len;) {
		size_t n = step == 0 || step > len - pos ? len - pos : step;
		rc = bulk_feed(r, (const char *)body + pos, n);
		pos += n;
	}
	if (rc == 0)
		rc = bulk_finish(r);
	bulk_reader_free(r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum bulk_format fmt = (enum bulk_format)(data[0] % 3);
	enum bulk_csv_header hdr = (enum bulk_csv_header)((data[0] >> 2) % 3);
	size_t step = (size_t)(data[0] >> 4) + 1;
	struct sink a, b;
	int ra = run_once(fmt, hdr, data + 1, size - 1, step, &a);
	int rb = run_once(fmt, hdr, data + 1, size - 1, 0, &b);
	if (ra != rb || a.n != b.n || a.hash != b.hash)
		abort();
	char q[256];
	(void)bulk_json_quote((const char *)data + 1, size - 1 < 100 ? size - 1 : 100, q, sizeof q);
	return 0;
}
