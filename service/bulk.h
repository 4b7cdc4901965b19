/*
 * bulk: a streaming reader for bulk request bodies (campaign lists,
 * suppression lists, contact imports). Pure: no I/O, no store, no crypto, so
 * it is unit-tested and fuzzed on its own (tests/unit/test_bulk.c,
 * tests/fuzz/fuzz_bulk.c).
 *
 * The body arrives in chunks of any size (bulk_feed); the reader hands each
 * entry to a callback as soon as it is complete and keeps nothing else, so
 * memory is one line buffer (LIMIT_LINE_BYTES) whatever the body's size.
 *
 * Formats, chosen by the request's Content-Type (bulk_format_from_type):
 *   application/json      one JSON array; each element is an entry
 *   application/x-ndjson  one JSON value a line (also application/ndjson,
 *                         application/jsonl); blank lines are skipped
 *   text/csv              RFC 4180 records, one a line (no newlines inside
 *                         quoted fields); the first record is a header when
 *                         ";header=present" is given, or, without the
 *                         parameter, when every field of it is a lower-case
 *                         name and one is a known column (email, phone,
 *                         contact_id, id, entry). With a header an entry is
 *                         an object {column: value} (empty values left out);
 *                         without one it is the first field as a string.
 *
 * Entries that cannot be read (bad JSON on a line, a line over the limit, a
 * CSV record with an unterminated quote) are handed on as invalid items with
 * their line number and a reason, and reading goes on: one bad line never
 * stops the rest. Only a JSON array whose framing is broken (no '[', a
 * missing comma, text after ']') stops the reader, because no later element
 * boundary can be trusted; that is ERR_INVALID with the position.
 *
 *   feed ─> split (lines | array elements) ─> decode ─> cb(item)
 *                    │ over LIMIT_LINE_BYTES: skip to the boundary, invalid item
 *                    └ framing error (JSON array only): fatal, sticky
 */
#ifndef CONSENTD_BULK_H
#define CONSENTD_BULK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bulk_format { BULK_JSON_ARRAY, BULK_NDJSON, BULK_CSV };
enum bulk_csv_header { BULK_CSV_AUTO, BULK_CSV_PRESENT, BULK_CSV_ABSENT };

struct bulk_item {
	uint64_t line;	   /* NDJSON, CSV: 1-based line; JSON array: 1-based element */
	json_t *value;	   /* borrowed for the call; NULL when invalid */
	const char *error; /* NULL, or why the entry could not be read */
};

/* Called for every entry; a non-zero return stops the reader with that code. */
typedef int (*bulk_cb)(void *ctx, const struct bulk_item *item);

struct bulk_reader;

/* Parses a Content-Type header into a format (and, for CSV, the header
 * parameter). ERR_UNSUPPORTED for anything else. */
int bulk_format_from_type(const char *content_type, enum bulk_format *fmt, enum bulk_csv_header *csv_header);

int bulk_reader_new(struct bulk_reader **out, enum bulk_format fmt, enum bulk_csv_header hdr, bulk_cb cb,
		    void *ctx);
/* Feeds the next piece of the body. 0, the callback's non-zero code,
 * ERR_INVALID on a broken JSON array, or ERR_TOOBIG past LIMIT_BULK_ENTRIES.
 * An error is sticky: later calls return it again. */
int bulk_feed(struct bulk_reader *r, const char *data, size_t len);
/* The body is complete: hands on a last line without a newline, and checks
 * that a JSON array was closed. */
int bulk_finish(struct bulk_reader *r);
/* Entries handed on so far (valid and invalid). */
uint64_t bulk_count(const struct bulk_reader *r);
void bulk_reader_free(struct bulk_reader *r);

/* Appends s (len bytes, UTF-8) as a JSON string literal to out (cap bytes);
 * returns the bytes written, or 0 when it does not fit. Used for result
 * lines, where one json_dumps per entry would be the bottleneck. */
size_t bulk_json_quote(const char *s, size_t len, char *out, size_t cap);

#endif
