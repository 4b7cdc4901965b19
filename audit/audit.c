/*
 * audit: the audit entry, its canonical encoding and hash, and its NDJSON and
 * CSV renderings. See audit.h for the invariants and docs/audit.md for the
 * byte layout an independent verifier follows.
 *
 * The hot path is audit_entry_hash: the verifier calls it once per entry, so
 * it encodes into the hasher's own buffer (tag, prev_hash and encoding laid
 * out contiguously) and feeds that to one reused EVP_MD_CTX in a single
 * update. Everything else runs at most once per exported or imported entry.
 *
 * detail is kept as text, and the hash covers that text. For a third party to
 * recompute the hash from an NDJSON export (where detail is an embedded
 * object) the text must be a fixed point of "parse, then write compactly", in
 * jansson and in Python's json.dumps(separators=(",", ":"),
 * ensure_ascii=False) alike. That is why detail is restricted to a flat object
 * of strings without control characters, integers, booleans and null: those
 * are the values both libraries write identically.
 */
#include "audit/audit.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/codec.h"
#include "service/base/error.h"

struct audit_hasher {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
	uint8_t buf[AUDIT_ENTRY_TAG_BYTES + AUDIT_HASH_BYTES + AUDIT_ENCODED_MAX];
};

/* One row of the string table: the order here IS the encoding order, the
 * JSON key order and the CSV column order. */
struct audit_field {
	const char *name;
	size_t offset;
	size_t max;
};

#define FIELD(n, m)                                                                                          \
	{                                                                                                    \
#n, offsetof(struct audit_entry, n), m                                                       \
	}
static const struct audit_field audit_fields[AUDIT_STRINGS] = {
	FIELD(actor, AUDIT_ACTOR_MAX),	     FIELD(role, AUDIT_NAME_MAX),
	FIELD(action, AUDIT_NAME_MAX),	     FIELD(record_id, AUDIT_RECORD_ID_MAX),
	FIELD(purpose, AUDIT_NAME_MAX),	     FIELD(channel, AUDIT_NAME_MAX),
	FIELD(decision, AUDIT_DECISION_MAX), FIELD(reason, AUDIT_REASON_MAX),
	FIELD(fields, AUDIT_FIELDS_MAX),     FIELD(request_id, AUDIT_REQUEST_ID_MAX),
	FIELD(client, AUDIT_CLIENT_MAX),     FIELD(detail, AUDIT_DETAIL_MAX),
};
#undef FIELD

#define DETAIL_INDEX 11

static const char *field_ptr(const struct audit_entry *e, size_t i)
{
	return (const char *)e + audit_fields[i].offset;
}

static char *field_mut(struct audit_entry *e, size_t i)
{
	return (char *)e + audit_fields[i].offset;
}

static void put_be64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(u & 0xff);
		u >>= 8;
	}
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF) and no
 * control character. Returns true when the text is acceptable. */
static bool text_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		size_t n;
		unsigned cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* detail: "" or the canonical text of a flat JSON object (see the header). */
static int check_detail(const char *d, size_t len)
{
	json_t *o = NULL;
	json_error_t jerr;
	char canon[AUDIT_DETAIL_MAX + 1];
	const char *key;
	json_t *val;
	int rc = 0;

	if (len == 0)
		return 0;
	o = json_loadb(d, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		rc = err_set(ERR_INVALID, "audit entry: detail is not valid JSON: %s", jerr.text);
		goto out;
	}
	if (!json_is_object(o) || json_object_size(o) == 0) {
		rc = err_set(ERR_INVALID, "audit entry: detail must be a non-empty JSON object "
					  "(an empty detail is the empty string)");
		goto out;
	}
	if (json_object_size(o) > LIMIT_FIELDS) {
		rc = err_set(ERR_TOOBIG, "audit entry: detail has more than %d keys", LIMIT_FIELDS);
		goto out;
	}
	json_object_foreach (o, key, val) {
		size_t klen = strlen(key);
		if (klen == 0 || klen > LIMIT_NAME_BYTES || !text_ok(key, klen)) {
			rc = err_set(ERR_INVALID,
				     "audit entry: detail keys must be 1 to %d "
				     "printable characters",
				     LIMIT_NAME_BYTES);
			goto out;
		}
		if (json_is_string(val)) {
			if (!text_ok(json_string_value(val), json_string_length(val))) {
				rc = err_set(ERR_INVALID,
					     "audit entry: detail.%s contains a "
					     "control character",
					     key);
				goto out;
			}
		} else if (!json_is_integer(val) && !json_is_boolean(val) && !json_is_null(val)) {
			rc = err_set(ERR_INVALID,
				     "audit entry: detail.%s must be a string, an "
				     "integer, a boolean or null",
				     key);
			goto out;
		}
	}
	if (json_dumpb(o, canon, sizeof canon, JSON_COMPACT) != len || memcmp(canon, d, len) != 0) {
		rc = err_set(ERR_INVALID, "audit entry: detail is not in canonical compact form");
		goto out;
	}
out:
	json_decref(o);
	return rc;
}

int audit_entry_check(const struct audit_entry *e)
{
	if (e->seq < 1)
		return err_set(ERR_INVALID, "audit entry: seq must be at least 1");
	if (e->time_us < 0 || e->time_us > AUDIT_TIME_MAX_US)
		return err_set(ERR_INVALID, "audit entry %lld: time out of range", (long long)e->seq);
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		const char *s = field_ptr(e, i);
		size_t len = strnlen(s, audit_fields[i].max + 1);
		if (len > audit_fields[i].max)
			return err_set(ERR_TOOBIG, "audit entry %lld: %s is longer than %zu bytes",
				       (long long)e->seq, audit_fields[i].name, audit_fields[i].max);
		if (!text_ok(s, len))
			return err_set(ERR_INVALID,
				       "audit entry %lld: %s is not UTF-8 text without "
				       "control characters",
				       (long long)e->seq, audit_fields[i].name);
		if (i == DETAIL_INDEX) {
			int rc = check_detail(s, len);
			if (rc < 0)
				return rc;
		}
	}
	if (strcmp(e->decision, "allow") != 0 && strcmp(e->decision, "deny") != 0 &&
	    strcmp(e->decision, "error") != 0 && strcmp(e->decision, "none") != 0)
		return err_set(ERR_INVALID,
			       "audit entry %lld: decision must be allow, deny, "
			       "error or none",
			       (long long)e->seq);
	return 0;
}

int audit_entry_encode(const struct audit_entry *e, uint8_t *buf, size_t cap)
{
	size_t len = 16;

	if (e->seq < 1 || e->time_us < 0)
		return err_set(ERR_INVALID, "audit entry: seq or time out of range");
	if (cap < len)
		return err_set(ERR_TOOBIG, "audit entry: encoding buffer too small");
	put_be64(buf, e->seq);
	put_be64(buf + 8, e->time_us);
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		const char *s = field_ptr(e, i);
		size_t n = strnlen(s, audit_fields[i].max + 1);
		if (n > audit_fields[i].max)
			return err_set(ERR_INVALID,
				       "audit entry %lld: %s is not terminated within "
				       "%zu bytes",
				       (long long)e->seq, audit_fields[i].name, audit_fields[i].max);
		if (cap - len < 4 + n)
			return err_set(ERR_TOOBIG, "audit entry: encoding buffer too small");
		put_be32(buf + len, (uint32_t)n);
		memcpy(buf + len + 4, s, n);
		len += 4 + n;
	}
	return (int)len;
}

int audit_hasher_new(struct audit_hasher **out)
{
	struct audit_hasher *h = NULL;
	int rc = 0;

	*out = NULL;
	h = calloc(1, sizeof *h);
	if (h == NULL) {
		rc = err_set(ERR_NOMEM, "audit: out of memory for a hasher");
		goto fail;
	}
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (h->md == NULL || h->ctx == NULL) {
		rc = err_set(ERR_CRYPTO, "audit: cannot set up SHA-256");
		goto fail;
	}
	memcpy(h->buf, AUDIT_ENTRY_TAG, AUDIT_ENTRY_TAG_BYTES);
	*out = h;
	return 0;
fail:
	audit_hasher_free(h);
	return rc;
}

void audit_hasher_free(struct audit_hasher *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

int audit_entry_hash(struct audit_hasher *h, const struct audit_entry *e, uint8_t out[AUDIT_HASH_BYTES])
{
	struct audit_hasher *tmp = NULL;
	const size_t head = AUDIT_ENTRY_TAG_BYTES + AUDIT_HASH_BYTES;
	unsigned int mdlen = 0;
	int rc, n;

	if (h == NULL) {
		rc = audit_hasher_new(&tmp);
		if (rc < 0)
			return rc;
		h = tmp;
	}
	n = audit_entry_encode(e, h->buf + head, sizeof h->buf - head);
	if (n < 0) {
		rc = n;
		goto out;
	}
	memcpy(h->buf + AUDIT_ENTRY_TAG_BYTES, e->prev_hash, AUDIT_HASH_BYTES);
	if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 ||
	    EVP_DigestUpdate(h->ctx, h->buf, head + (size_t)n) != 1 ||
	    EVP_DigestFinal_ex(h->ctx, out, &mdlen) != 1 || mdlen != AUDIT_HASH_BYTES) {
		rc = err_set(ERR_CRYPTO, "audit: SHA-256 failed");
		goto out;
	}
	rc = 0;
out:
	audit_hasher_free(tmp);
	return rc;
}

int audit_entry_set_detail(struct audit_entry *e, json_t *detail)
{
	char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	e->detail[0] = '\0';
	if (text == NULL)
		return err_set(ERR_NOMEM, "the audit detail could not be encoded");
	size_t n = strlen(text);
	int rc = 0;
	if (n >= sizeof e->detail)
		rc = err_set(ERR_TOOBIG, "the audit detail is longer than %zu bytes", sizeof e->detail - 1);
	else
		memcpy(e->detail, text, n + 1);
	free(text);
	return rc;
}

int audit_entry_link(struct audit_hasher *h, struct audit_entry *e, const uint8_t prev[AUDIT_HASH_BYTES])
{
	memmove(e->prev_hash, prev, AUDIT_HASH_BYTES);
	return audit_entry_hash(h, e, e->hash);
}

int audit_time_format(int64_t time_us, char out[AUDIT_TIME_BYTES])
{
	if (time_us < 0 || time_us > AUDIT_TIME_MAX_US)
		return err_set(ERR_INVALID, "audit: time out of range");
	format_time_us(time_us, out, AUDIT_TIME_BYTES);
	return 0;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int audit_time_parse(const char *s, size_t len, int64_t *time_us)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (len != AUDIT_TIME_BYTES - 1 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != '.' || s[26] != 'Z')
		goto bad;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
	int us = digits(s + 20, 6);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || se < 0 || se > 59 || us < 0)
		goto bad;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		goto bad;
	*time_us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000000) + us;
	return 0;
bad:
	return err_set(ERR_INVALID, "audit: time must look like 2024-05-01T12:34:56.123456Z");
}

void audit_hex_encode(const uint8_t *in, size_t n, char *out)
{
	hex_encode(in, n, out);
}

int audit_hex_decode(const char *in, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n)
		return err_set(ERR_INVALID, "audit: expected %zu hex digits", 2 * n);
	/* Lowercase only: one text per value, as the chain hashes text. */
	if (!hex_decode_lower(in, len, out, n))
		return err_set(ERR_INVALID, "audit: expected lowercase hex digits");
	return 0;
}

/* A bounded output buffer: writes stop at cap and set overflow, so callers
 * check once at the end. */
struct outbuf {
	char *p;
	size_t cap;
	size_t len;
	bool overflow;
};

static void out_mem(struct outbuf *o, const char *s, size_t n)
{
	if (o->overflow || o->cap - o->len <= n) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_str(struct outbuf *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

static void out_char(struct outbuf *o, char c)
{
	out_mem(o, &c, 1);
}

/* A JSON string. Entries hold no control characters (audit_entry_check), so
 * only the quote and the backslash need escaping. */
static void out_json_string(struct outbuf *o, const char *s)
{
	out_char(o, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			out_char(o, '\\');
		out_char(o, *s);
	}
	out_char(o, '"');
}

static int out_finish(struct outbuf *o, const char *what)
{
	if (o->overflow || o->len > INT32_MAX)
		return err_set(ERR_TOOBIG, "audit: %s does not fit in %zu bytes", what, o->cap);
	return (int)o->len;
}

int audit_entry_format_json(const struct audit_entry *e, char *buf, size_t cap)
{
	struct outbuf o = { buf, cap, 0, cap == 0 };
	char num[32], tbuf[AUDIT_TIME_BYTES], hex[2 * AUDIT_HASH_BYTES + 1];
	int rc;

	rc = audit_entry_check(e);
	if (rc < 0)
		return rc;
	if (cap > 0)
		buf[0] = '\0';
	audit_time_format(e->time_us, tbuf);
	snprintf(num, sizeof num, "{\"seq\":%lld,\"time\":", (long long)e->seq);
	out_str(&o, num);
	out_json_string(&o, tbuf);
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		out_str(&o, ",\"");
		out_str(&o, audit_fields[i].name);
		out_str(&o, "\":");
		if (i != DETAIL_INDEX)
			out_json_string(&o, field_ptr(e, i));
		else
			out_str(&o, e->detail[0] != '\0' ? e->detail : "{}");
	}
	audit_hex_encode(e->prev_hash, AUDIT_HASH_BYTES, hex);
	out_str(&o, ",\"prev_hash\":\"");
	out_str(&o, hex);
	audit_hex_encode(e->hash, AUDIT_HASH_BYTES, hex);
	out_str(&o, "\",\"hash\":\"");
	out_str(&o, hex);
	out_str(&o, "\"}");
	return out_finish(&o, "audit entry JSON");
}

int audit_entry_to_json(const struct audit_entry *e, json_t **out)
{
	char *line = NULL;
	json_error_t jerr;
	int rc;

	*out = NULL;
	line = malloc(AUDIT_JSON_MAX);
	if (line == NULL)
		return err_set(ERR_NOMEM, "audit: out of memory rendering an entry");
	rc = audit_entry_format_json(e, line, AUDIT_JSON_MAX);
	if (rc < 0)
		goto out;
	*out = json_loadb(line, (size_t)rc, 0, &jerr);
	if (*out == NULL) {
		rc = err_set(ERR_INTERNAL, "audit: rendered entry is not JSON: %s", jerr.text);
		goto out;
	}
	rc = 0;
out:
	free(line);
	return rc;
}

/* The keys of an exported entry, for the strictness check. */
static bool known_key(const char *k)
{
	if (strcmp(k, "seq") == 0 || strcmp(k, "time") == 0 || strcmp(k, "prev_hash") == 0 ||
	    strcmp(k, "hash") == 0)
		return true;
	for (size_t i = 0; i < AUDIT_STRINGS; i++)
		if (strcmp(k, audit_fields[i].name) == 0)
			return true;
	return false;
}

static int get_hash(json_t *root, const char *key, uint8_t out[AUDIT_HASH_BYTES])
{
	json_t *v = json_object_get(root, key);
	if (!json_is_string(v) ||
	    audit_hex_decode(json_string_value(v), json_string_length(v), out, AUDIT_HASH_BYTES) < 0)
		return err_set(ERR_INVALID, "audit entry JSON: %s must be 64 lowercase hex digits", key);
	return 0;
}

int audit_entry_from_json(struct audit_entry *out, const char *line, size_t len)
{
	json_t *root = NULL;
	json_error_t jerr;
	const char *key;
	json_t *v;
	int rc = 0;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > LIMIT_LINE_BYTES) {
		rc = err_set(ERR_TOOBIG, "audit entry JSON: line longer than %d bytes", LIMIT_LINE_BYTES);
		goto out;
	}
	memset(out, 0, sizeof *out);
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		rc = err_set(ERR_INVALID, "audit entry JSON: %s at column %d", jerr.text, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = err_set(ERR_INVALID, "audit entry JSON: a line must be an object");
		goto out;
	}
	json_object_foreach (root, key, v) {
		if (!known_key(key)) {
			rc = err_set(ERR_INVALID, "audit entry JSON: unknown key");
			goto out;
		}
	}
	v = json_object_get(root, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		rc = err_set(ERR_INVALID, "audit entry JSON: seq must be an integer of at least 1");
		goto out;
	}
	out->seq = json_integer_value(v);
	v = json_object_get(root, "time");
	if (!json_is_string(v) ||
	    audit_time_parse(json_string_value(v), json_string_length(v), &out->time_us) < 0) {
		rc = err_set(ERR_INVALID, "audit entry JSON: time must be RFC 3339 UTC with six "
					  "fraction digits");
		goto out;
	}
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		v = json_object_get(root, audit_fields[i].name);
		if (i == DETAIL_INDEX) {
			if (!json_is_object(v)) {
				rc = err_set(ERR_INVALID, "audit entry JSON: detail must be an object");
				goto out;
			}
			if (json_object_size(v) == 0)
				continue;
			size_t n = json_dumpb(v, out->detail, AUDIT_DETAIL_MAX, JSON_COMPACT);
			if (n == 0 || n > AUDIT_DETAIL_MAX) {
				rc = err_set(ERR_TOOBIG, "audit entry JSON: detail longer than %d bytes",
					     AUDIT_DETAIL_MAX);
				goto out;
			}
			out->detail[n] = '\0';
			continue;
		}
		if (!json_is_string(v)) {
			rc = err_set(ERR_INVALID, "audit entry JSON: %s must be a string",
				     audit_fields[i].name);
			goto out;
		}
		if (json_string_length(v) > audit_fields[i].max) {
			rc = err_set(ERR_TOOBIG, "audit entry JSON: %s longer than %zu bytes",
				     audit_fields[i].name, audit_fields[i].max);
			goto out;
		}
		memcpy(field_mut(out, i), json_string_value(v), json_string_length(v) + 1);
	}
	rc = get_hash(root, "prev_hash", out->prev_hash);
	if (rc < 0)
		goto out;
	rc = get_hash(root, "hash", out->hash);
	if (rc < 0)
		goto out;
	rc = audit_entry_check(out);
out:
	json_decref(root);
	return rc;
}

/* One CSV cell: formula guard first, then RFC 4180 quoting if needed. */
static void out_csv_cell(struct outbuf *o, const char *s, bool guard)
{
	bool g = guard && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@');
	bool q = strpbrk(s, ",\"\r\n") != NULL;

	if (q)
		out_char(o, '"');
	if (g)
		out_char(o, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			out_char(o, '"');
		out_char(o, *s);
	}
	if (q)
		out_char(o, '"');
}

int audit_csv_header(char *buf, size_t cap)
{
	struct outbuf o = { buf, cap, 0, cap == 0 };

	out_str(&o, "seq,time");
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		out_char(&o, ',');
		out_str(&o, audit_fields[i].name);
	}
	out_str(&o, ",prev_hash,hash\r\n");
	return out_finish(&o, "audit CSV header");
}

int audit_entry_format_csv(const struct audit_entry *e, char *buf, size_t cap)
{
	struct outbuf o = { buf, cap, 0, cap == 0 };
	char num[24], tbuf[AUDIT_TIME_BYTES], hex[2 * AUDIT_HASH_BYTES + 1];
	int rc;

	rc = audit_entry_check(e);
	if (rc < 0)
		return rc;
	if (cap > 0)
		buf[0] = '\0';
	snprintf(num, sizeof num, "%lld,", (long long)e->seq);
	out_str(&o, num);
	audit_time_format(e->time_us, tbuf);
	out_str(&o, tbuf);
	for (size_t i = 0; i < AUDIT_STRINGS; i++) {
		out_char(&o, ',');
		out_csv_cell(&o, field_ptr(e, i), true);
	}
	audit_hex_encode(e->prev_hash, AUDIT_HASH_BYTES, hex);
	out_char(&o, ',');
	out_str(&o, hex);
	audit_hex_encode(e->hash, AUDIT_HASH_BYTES, hex);
	out_char(&o, ',');
	out_str(&o, hex);
	out_str(&o, "\r\n");
	return out_finish(&o, "audit CSV row");
}

/* Copies src into a field of cap bytes; a value that does not fit leaves
 * the field empty and is reported, never cut (a cut id or reason would be
 * a different, wrong record). */
static int fill_one(char *dst, size_t cap, const char *src, const char *name, int rc)
{
	size_t n = strlen(src);
	if (n >= cap) {
		dst[0] = '\0';
		return rc != 0 ? rc
			       : err_set(ERR_TOOBIG, "the audit %s is longer than %zu bytes", name, cap - 1);
	}
	memcpy(dst, src, n + 1);
	return rc;
}

int audit_entry_fill(struct audit_entry *e, const char *actor, const char *role, const char *action,
		     const char *record_id, const char *purpose, const char *channel, const char *decision,
		     const char *reason)
{
	int rc = 0;
	rc = fill_one(e->actor, sizeof e->actor, actor ? actor : "", "actor", rc);
	rc = fill_one(e->role, sizeof e->role, role ? role : "", "role", rc);
	rc = fill_one(e->action, sizeof e->action, action ? action : "", "action", rc);
	rc = fill_one(e->record_id, sizeof e->record_id, record_id ? record_id : "", "record id", rc);
	rc = fill_one(e->purpose, sizeof e->purpose, purpose ? purpose : "", "purpose", rc);
	rc = fill_one(e->channel, sizeof e->channel, channel ? channel : "", "channel", rc);
	rc = fill_one(e->decision, sizeof e->decision, decision ? decision : "none", "decision", rc);
	rc = fill_one(e->reason, sizeof e->reason, reason ? reason : "", "reason", rc);
	return rc;
}
