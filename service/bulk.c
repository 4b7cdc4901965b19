/*
 * bulk: streaming splitter and decoders for JSON arrays, NDJSON and CSV.
 * See bulk.h for the formats.
 *
 * Invariants:
 * - The only buffer is r->buf (LIMIT_LINE_BYTES + 1); a line or element
 *   longer than that is skipped to its boundary and reported invalid.
 * - Line numbers count every '\n' of the body, blank lines included, so
 *   they match what an editor shows.
 * - After a fatal error every call returns the same code.
 */
#include "service/bulk.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CSV_MAX_COLUMNS 64

/* JSON array framing states. */
enum arr_state { A_START, A_BEFORE, A_ELEM, A_AFTER, A_END };

struct bulk_reader {
	enum bulk_format fmt;
	enum bulk_csv_header hdr;
	bulk_cb cb;
	void *ctx;
	int err; /* sticky */
	uint64_t count;
	uint64_t line; /* current line (1-based) */
	bool bom_checked;
	size_t bom_len; /* BOM bytes seen so far */
	char *buf;
	size_t len;
	bool overflow; /* the current line/element went over the limit */
	/* CSV */
	bool csv_first_done;
	char *columns[CSV_MAX_COLUMNS];
	size_t n_columns;
	/* JSON array */
	enum arr_state as;
	int depth;
	bool in_string, escape;
	uint64_t elements;
};

int bulk_format_from_type(const char *ct, enum bulk_format *fmt, enum bulk_csv_header *hdr)
{
	const char *params = NULL;
	if (hdr != NULL)
		*hdr = BULK_CSV_AUTO;
	if (ct == NULL)
		return err_set(ERR_UNSUPPORTED,
			       "send the list as application/json, application/x-ndjson or text/csv");
	if (media_type_is(ct, "application/json", &params)) {
		*fmt = BULK_JSON_ARRAY;
		return 0;
	}
	if (media_type_is(ct, "application/x-ndjson", &params) ||
	    media_type_is(ct, "application/ndjson", &params) ||
	    media_type_is(ct, "application/jsonl", &params) ||
	    media_type_is(ct, "application/x-jsonlines", &params)) {
		*fmt = BULK_NDJSON;
		return 0;
	}
	if (media_type_is(ct, "text/csv", &params)) {
		*fmt = BULK_CSV;
		if (hdr != NULL) {
			const char *h = strcasestr(params, "header=");
			if (h != NULL && strncasecmp(h + 7, "present", 7) == 0)
				*hdr = BULK_CSV_PRESENT;
			else if (h != NULL && strncasecmp(h + 7, "absent", 6) == 0)
				*hdr = BULK_CSV_ABSENT;
		}
		return 0;
	}
	return err_set(ERR_UNSUPPORTED,
		       "send the list as application/json, application/x-ndjson or text/csv");
}

int bulk_reader_new(struct bulk_reader **out, enum bulk_format fmt, enum bulk_csv_header hdr, bulk_cb cb,
		    void *ctx)
{
	struct bulk_reader *r = calloc(1, sizeof *r);
	*out = NULL;
	if (r == NULL || (r->buf = malloc(LIMIT_LINE_BYTES + 1)) == NULL) {
		free(r);
		return err_set(ERR_NOMEM, "out of memory");
	}
	r->fmt = fmt;
	r->hdr = hdr;
	r->cb = cb;
	r->ctx = ctx;
	r->line = 1;
	*out = r;
	return 0;
}

void bulk_reader_free(struct bulk_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_columns; i++)
		free(r->columns[i]);
	free(r->buf);
	free(r);
}

uint64_t bulk_count(const struct bulk_reader *r)
{
	return r->count;
}

static int emit(struct bulk_reader *r, uint64_t line, json_t *value, const char *error)
{
	if (r->count >= LIMIT_BULK_ENTRIES)
		return r->err = err_set(ERR_TOOBIG, "more than %llu entries",
					(unsigned long long)LIMIT_BULK_ENTRIES);
	r->count++;
	struct bulk_item it = { line, value, error };
	int rc = r->cb(r->ctx, &it);
	if (rc != 0)
		r->err = rc;
	return rc;
}

static int emit_json(struct bulk_reader *r, uint64_t line, const char *s, size_t len)
{
	json_error_t jerr;
	if (!json_depth_within(s, len, LIMIT_JSON_DEPTH))
		return emit(r, line, NULL, "JSON nested too deeply");
	json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return emit(r, line, NULL, "malformed JSON");
	int rc = emit(r, line, v, NULL);
	json_decref(v);
	return rc;
}

/* ---- CSV ---- */

/* Splits one record into fields in place (quotes removed, "" unescaped).
 * Returns the number of fields, or -1 on a malformed quote. */
static int csv_split(char *s, size_t len, char **fields, size_t *lens, int max)
{
	int n = 0;
	size_t i = 0;
	for (;;) {
		if (n >= max)
			return -1;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		char *w = s + i;
		size_t wl = 0;
		if (i < len && s[i] == '"') {
			i++;
			for (;;) {
				if (i >= len)
					return -1; /* unterminated quote */
				if (s[i] == '"') {
					if (i + 1 < len && s[i + 1] == '"') {
						w[wl++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				w[wl++] = s[i++];
			}
			while (i < len && (s[i] == ' ' || s[i] == '\t'))
				i++;
			if (i < len && s[i] != ',')
				return -1; /* text after a closing quote */
		} else {
			size_t start = i;
			while (i < len && s[i] != ',')
				i++;
			size_t end = i;
			while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
				end--;
			if (memchr(s + start, '"', end - start) != NULL)
				return -1; /* a quote inside an unquoted field */
			memmove(w, s + start, end - start);
			wl = end - start;
		}
		fields[n] = w;
		lens[n] = wl;
		n++;
		if (i >= len)
			return n;
		i++; /* the comma */
	}
}

static bool is_known_column(const char *s)
{
	static const char *const known[] = { "email", "phone", "contact_id", "id", "entry", NULL };
	for (int i = 0; known[i] != NULL; i++)
		if (strcmp(known[i], s) == 0)
			return true;
	return false;
}

/* Takes the first record as the header when it looks like one. Returns true
 * when it was taken. */
static bool csv_try_header(struct bulk_reader *r, char **f, size_t *fl, int n)
{
	char name[LIMIT_NAME_BYTES + 1];
	bool known = false;
	if (r->hdr == BULK_CSV_ABSENT)
		return false;
	for (int i = 0; i < n; i++) {
		if (fl[i] == 0 || fl[i] > LIMIT_NAME_BYTES)
			return false;
		for (size_t k = 0; k < fl[i]; k++)
			name[k] = (char)(r->hdr == BULK_CSV_PRESENT ? tolower((unsigned char)f[i][k])
								    : f[i][k]);
		name[fl[i]] = '\0';
		if (!is_name(name))
			return false;
		known = known || is_known_column(name);
	}
	if (!known && r->hdr != BULK_CSV_PRESENT)
		return false;
	for (int i = 0; i < n; i++) {
		r->columns[i] = strndup(f[i], fl[i]);
		for (char *p = r->columns[i]; p != NULL && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		r->n_columns++;
		if (r->columns[i] == NULL)
			return false;
	}
	return true;
}

static int csv_record(struct bulk_reader *r, uint64_t line, char *s, size_t len)
{
	char *f[CSV_MAX_COLUMNS];
	size_t fl[CSV_MAX_COLUMNS];
	int n = csv_split(s, len, f, fl, CSV_MAX_COLUMNS);
	bool first = !r->csv_first_done;
	r->csv_first_done = true;
	if (n < 0)
		return emit(r, line, NULL, "malformed CSV record");
	if (first && csv_try_header(r, f, fl, n))
		return 0;
	if (first && r->hdr == BULK_CSV_PRESENT)
		return r->err = err_set(ERR_INVALID, "line %llu: the CSV header must name columns",
					(unsigned long long)line);
	for (int i = 0; i < n; i++)
		if (!is_clean_utf8(f[i], fl[i]))
			return emit(r, line, NULL, "not UTF-8 text");
	json_t *v;
	if (r->n_columns == 0) {
		v = json_stringn(f[0], fl[0]);
	} else {
		if ((size_t)n > r->n_columns)
			return emit(r, line, NULL, "more fields than header columns");
		v = json_object();
		for (int i = 0; v != NULL && i < n; i++)
			if (fl[i] > 0)
				json_object_set_new(v, r->columns[i], json_stringn(f[i], fl[i]));
	}
	if (v == NULL)
		return r->err = err_set(ERR_NOMEM, "out of memory");
	int rc = emit(r, line, v, NULL);
	json_decref(v);
	return rc;
}

/* ---- lines (NDJSON, CSV) ---- */

static int line_done(struct bulk_reader *r)
{
	uint64_t line = r->line;
	size_t len = r->len;
	char *s = r->buf;
	r->len = 0;
	if (r->overflow) {
		r->overflow = false;
		return emit(r, line, NULL, "line longer than the limit");
	}
	if (len > 0 && s[len - 1] == '\r')
		len--;
	size_t i = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == len)
		return 0; /* blank */
	s[len] = '\0';
	if (r->fmt == BULK_NDJSON)
		return emit_json(r, line, s + i, len - i);
	return csv_record(r, line, s, len);
}

static int feed_lines(struct bulk_reader *r, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (!r->overflow) {
			if (r->len + take > LIMIT_LINE_BYTES) {
				r->overflow = true;
				r->len = 0;
			} else {
				memcpy(r->buf + r->len, data, take);
				r->len += take;
			}
		}
		if (nl == NULL)
			return 0;
		int rc = line_done(r);
		r->line++;
		if (rc != 0)
			return rc;
		data = nl + 1;
		len -= take + 1;
	}
	return 0;
}

/* ---- JSON array ---- */

static int arr_fatal(struct bulk_reader *r, const char *what)
{
	return r->err = err_set(ERR_INVALID, "the JSON array is malformed at element %llu: %s",
				(unsigned long long)r->elements + 1, what);
}

static int elem_done(struct bulk_reader *r)
{
	size_t len = r->len;
	r->len = 0;
	r->elements++;
	if (r->overflow) {
		r->overflow = false;
		return emit(r, r->elements, NULL, "element longer than the limit");
	}
	while (len > 0 && isspace((unsigned char)r->buf[len - 1]))
		len--;
	if (len == 0) {
		r->elements--;
		return arr_fatal(r, "empty element");
	}
	return emit_json(r, r->elements, r->buf, len);
}

static void elem_put(struct bulk_reader *r, char c)
{
	if (r->overflow)
		return;
	if (r->len >= LIMIT_LINE_BYTES) {
		r->overflow = true;
		return;
	}
	r->buf[r->len++] = c;
}

static int feed_array(struct bulk_reader *r, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\n')
			r->line++;
		switch (r->as) {
		case A_START:
			if (isspace((unsigned char)c))
				continue;
			if (c != '[')
				return arr_fatal(r, "the body must be a JSON array");
			r->as = A_BEFORE;
			continue;
		case A_BEFORE:
			if (isspace((unsigned char)c))
				continue;
			if (c == ']') {
				if (r->elements > 0)
					return arr_fatal(r, "a comma before ']'");
				r->as = A_END;
				continue;
			}
			if (c == ',')
				return arr_fatal(r, "empty element");
			r->as = A_ELEM;
			r->depth = 0;
			r->in_string = r->escape = false;
			/* fall through */
		case A_ELEM:
			if (r->in_string) {
				if (r->escape)
					r->escape = false;
				else if (c == '\\')
					r->escape = true;
				else if (c == '"')
					r->in_string = false;
				elem_put(r, c);
				continue;
			}
			if (c == '"') {
				r->in_string = true;
			} else if (c == '[' || c == '{') {
				r->depth++;
			} else if ((c == ']' || c == '}') && r->depth > 0) {
				r->depth--;
			} else if (r->depth == 0 && (c == ',' || c == ']')) {
				int rc = elem_done(r);
				if (rc != 0)
					return rc;
				r->as = c == ',' ? A_BEFORE : A_END;
				continue;
			}
			elem_put(r, c);
			continue;
		case A_AFTER:
		case A_END:
			if (!isspace((unsigned char)c))
				return arr_fatal(r, "text after the closing ']'");
			continue;
		}
	}
	return 0;
}

static int feed_body(struct bulk_reader *r, const char *data, size_t len)
{
	if (r->fmt == BULK_JSON_ARRAY)
		return feed_array(r, data, len);
	return feed_lines(r, data, len);
}

int bulk_feed(struct bulk_reader *r, const char *data, size_t len)
{
	/* A UTF-8 byte-order mark at the start (spreadsheet exports), which may
	 * arrive split over chunks. */
	static const char bom[] = "\xEF\xBB\xBF";
	if (r->err != 0)
		return r->err;
	while (!r->bom_checked && len > 0) {
		if (*data == bom[r->bom_len]) {
			data++;
			len--;
			if (++r->bom_len == 3)
				r->bom_checked = true;
			continue;
		}
		r->bom_checked = true;
		int rc = r->bom_len ? feed_body(r, bom, r->bom_len) : 0; /* not a BOM after all */
		if (rc != 0)
			return rc;
	}
	return feed_body(r, data, len);
}

int bulk_finish(struct bulk_reader *r)
{
	if (r->err != 0)
		return r->err;
	if (!r->bom_checked && r->bom_len > 0) {
		static const char bom[] = "\xEF\xBB\xBF";
		r->bom_checked = true;
		int rc = feed_body(r, bom, r->bom_len);
		if (rc != 0)
			return rc;
	}
	if (r->fmt == BULK_JSON_ARRAY) {
		if (r->as == A_START)
			return r->err = err_set(ERR_INVALID, "the body is empty; a JSON array is expected");
		if (r->as != A_END)
			return arr_fatal(r, "the array is not closed with ']'");
		return 0;
	}
	if (r->len > 0 || r->overflow)
		return line_done(r);
	return 0;
}

size_t bulk_json_quote(const char *s, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap < 3)
		return 0;
	out[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (n + 7 >= cap)
			return 0;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[n++] = '\\';
			out[n++] = 'u';
			out[n++] = '0';
			out[n++] = '0';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	if (n + 1 >= cap)
		return 0;
	out[n++] = '"';
	return n;
}
