/*
 * fuzz_form: the customer form bodies: application/x-www-form-urlencoded
 * fields (parse_form_value, as POST /p/{token} reads action, csrf, purpose,
 * channel, status and confirm), the media-type test (parse_media_is), and
 * the RFC 8058 one-click body of POST /v1/unsubscribe/{token} in either
 * encoding (parse_one_click, parse_multipart_one_click).
 *
 * Input: byte 0 picks the output capacity and what is generated; then the
 * Content-Type header up to the first '\n' (no '\n': no header), then the
 * body. The body is passed with its exact length, so a read past it is an
 * ASan report.
 *
 * Invariants checked (abort on violation):
 * - parse_form_value returns 0, ERR_NOTFOUND, ERR_INVALID or ERR_TOOBIG, and
 *   leaves the output alone on ERR_NOTFOUND;
 * - a decoded value is NUL-terminated within the capacity and holds only
 *   bytes the caller allows: UTF-8 text with no NUL, no DEL and no control
 *   byte but tab, CR and LF (so a C string comparison sees all of it);
 * - it equals what an independent decoder makes of the first field whose
 *   decoded name matches; it round-trips through %-encoding; and a larger
 *   capacity never changes an accepted value or a refused escape;
 * - a one-click answer of yes means a form type whose body holds the field
 *   List-Unsubscribe=One-Click (urlencoded) or One-Click followed by a
 *   delimiter (multipart); a well-formed multipart body with a boundary
 *   built from the input (1 to 70 characters of RFC 2046's set, quoted when
 *   it must be, after a preamble or not, after another part or not) is
 *   accepted, and the same body with a different value is not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG_CAP 70000

static const char *const names[] = { "action",		 "csrf", "purpose", "channel", "status", "confirm",
				     "List-Unsubscribe", "",	 "a b",	    "%" };
static const size_t caps[] = { 1, 2, 4, 10, 16, 64, 256, 1024 };

/* The bytes a decoded form value may hold: text, no control byte but
 * tab, CR and LF. UTF-8 well-formedness is checked by is_clean_utf8 too. */
static bool allowed_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
			return false;
	}
	return is_clean_utf8(s, n);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* An independent decoder: 0 and the decoded bytes in out (malloc'd), or -1
 * for a bad escape or text that is not allowed. */
static int ref_decode(const char *s, size_t n, char **out, size_t *out_len)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	if (o == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
				free(o);
				return -1;
			}
			o[k++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			o[k++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	o[k] = '\0';
	if (!allowed_text(o, k)) {
		free(o);
		return -1;
	}
	*out = o;
	*out_len = k;
	return 0;
}

/* The reference answer for name: 1 found (value in *v), 0 not found, -1 the
 * found field's value does not decode. */
static int ref_value(const char *body, size_t len, const char *name, char **v, size_t *vlen)
{
	size_t i = 0;
	while (i < len) {
		size_t f = i;
		while (f < len && body[f] != '&')
			f++;
		const char *eq = memchr(body + i, '=', f - i);
		char *key;
		size_t klen;
		if (eq != NULL && ref_decode(body + i, (size_t)(eq - (body + i)), &key, &klen) == 0) {
			bool match = klen < 64 && klen == strlen(name) && memcmp(key, name, klen) == 0;
			free(key);
			if (match)
				return ref_decode(eq + 1, (size_t)(body + f - eq - 1), v, vlen) == 0 ? 1 : -1;
		}
		i = f + 1;
	}
	return 0;
}

static void check_value(const char *body, size_t len, const char *name, size_t cap)
{
	static char big[BIG_CAP];
	char *out = malloc(cap + 8);
	if (out == NULL)
		abort();
	memset(out, 0xa5, cap + 8);
	err_clear();
	int rc = parse_form_value(body, len, name, out, cap);
	if (rc != 0 && (err_code() != rc || err_msg()[0] == '\0'))
		abort();
	char *ref = NULL;
	size_t ref_len = 0;
	int found = ref_value(body, len, name, &ref, &ref_len);
	switch (rc) {
	case 0: {
		size_t n = strnlen(out, cap);
		if (n >= cap || !allowed_text(out, n) || found != 1 || ref_len != n ||
		    memcmp(ref, out, n) != 0)
			abort();
		/* Round trip: the value %-encoded (spaces as '+') decodes to itself. */
		char *enc = malloc(strlen(name) * 3 + 1 + n * 3 + 1);
		size_t k = 0;
		if (enc == NULL)
			abort();
		for (size_t i = 0; name[i] != '\0'; i++)
			k += (size_t)sprintf(enc + k, "%%%02X", (unsigned char)name[i]);
		enc[k++] = '=';
		for (size_t i = 0; i < n; i++)
			k += out[i] == ' ' ? (size_t)sprintf(enc + k, "+")
					   : (size_t)sprintf(enc + k, "%%%02x", (unsigned char)out[i]);
		if (parse_form_value(enc, k, name, big, cap) != 0 || strcmp(big, out) != 0)
			abort();
		free(enc);
		if (parse_form_value(body, len, name, big, BIG_CAP) != 0 || strcmp(big, out) != 0)
			abort();
		break;
	}
	case ERR_NOTFOUND:
		for (size_t i = 0; i < cap + 8; i++)
			if ((unsigned char)out[i] != 0xa5)
				abort();
		if (found != 0)
			abort();
		break;
	case ERR_INVALID:
		if (found != -1 || parse_form_value(body, len, name, big, BIG_CAP) != ERR_INVALID)
			abort();
		break;
	case ERR_TOOBIG:
		if (found == 0 || (found == 1 && ref_len < cap - 1))
			abort();
		break;
	default: abort();
	}
	/* Nothing is written past the capacity. */
	for (size_t i = cap; i < cap + 8; i++)
		if ((unsigned char)out[i] != 0xa5)
			abort();
	free(ref);
	free(out);
}

static void check_one_click(const char *ctype, const char *body, size_t len)
{
	bool url = parse_media_is(ctype, "application/x-www-form-urlencoded");
	bool mp = parse_media_is(ctype, "multipart/form-data");
	if (url && mp)
		abort();
	if (!parse_one_click(ctype, body, len))
		return;
	if (!url && !mp)
		abort();
	if (mp && (memmem(body, len, "One-Click\r\n--", 13) == NULL ||
		   !parse_multipart_one_click(ctype, body, len)))
		abort();
	if (url) {
		char v[256];
		if (parse_form_value(body, len, "List-Unsubscribe", v, sizeof v) != 0 ||
		    strcmp(v, "One-Click") != 0)
			abort();
	}
}

/* RFC 2046 bchars; the last may not be a space. */
static const char bchars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? ";

static void check_generated_multipart(uint8_t sel, const uint8_t *in, size_t n)
{
	char b[71], ctype[160], other[33];
	size_t blen = n < 1 ? 1 : n > 70 ? 70 : n;
	for (size_t i = 0; i < blen; i++)
		b[i] = bchars[(i < n ? in[i] : 0) % (sizeof bchars - 1)];
	if (b[blen - 1] == ' ')
		b[blen - 1] = 'x';
	b[blen] = '\0';
	bool must_quote = strpbrk(b, "()<>@,;:\\\"/[]?= ") != NULL;
	snprintf(ctype, sizeof ctype, "%smultipart/form-data;%sboundary=%s%s%s", sel & 1 ? " " : "",
		 sel & 2 ? " charset=utf-8; " : " ", must_quote || (sel & 4) ? "\"" : "", b,
		 must_quote || (sel & 4) ? "\"" : "");
	size_t olen = 0;
	for (size_t i = 0; i < 32 && blen + i < n; i++) {
		char c = (char)in[blen + i];
		if (c != '\r' && c != '\n' && c != '-')
			other[olen++] = c;
	}
	other[olen] = '\0';
	for (int value = 0; value < 2; value++) {
		char body[1024];
		int len = snprintf(body, sizeof body,
				   "%s--%s\r\n%s%s%s--%s\r\nContent-Disposition: form-data; "
				   "name=\"List-Unsubscribe\"\r\n\r\n%s\r\n--%s--\r\n",
				   sel & 8 ? "a preamble\r\n" : "", b,
				   sel & 16 ? "Content-Disposition: form-data; name=\"other\"\r\n\r\n" : "",
				   sel & 16 ? other : "", sel & 16 ? "\r\n" : "", sel & 16 ? b : "",
				   value == 0 ? "One-Click" : "One-Click ", b);
		if (!(sel & 16)) /* without the other part, the first delimiter opens ours */
			len = snprintf(body, sizeof body,
				       "%s--%s\r\nContent-Disposition: form-data; "
				       "name=\"List-Unsubscribe\"\r\n\r\n%s\r\n--%s--\r\n",
				       sel & 8 ? "a preamble\r\n" : "", b,
				       value == 0 ? "One-Click" : "One-Click ", b);
		if (len < 0 || (size_t)len >= sizeof body)
			abort();
		/* An exact-size copy, so a read past the end is an ASan report. */
		char *exact = malloc((size_t)len);
		if (exact == NULL)
			abort();
		memcpy(exact, body, (size_t)len);
		bool yes = parse_one_click(ctype, exact, (size_t)len);
		if (yes != (value == 0)) {
			fprintf(stderr, "fuzz_form: ctype [%s] body [%.*s] -> %d\n", ctype, len, body, yes);
			abort();
		}
		free(exact);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	const uint8_t *nl = memchr(data, '\n', size);
	char *ctype = NULL;
	const char *body = (const char *)data;
	size_t len = size;
	if (nl != NULL) {
		size_t hl = (size_t)(nl - data);
		ctype = malloc(hl + 1);
		if (ctype == NULL)
			return 0;
		memcpy(ctype, data, hl);
		ctype[hl] = '\0'; /* a header stops at a NUL, as in libmicrohttpd */
		body = (const char *)nl + 1;
		len = size - hl - 1;
	}
	size_t cap = caps[sel % (sizeof caps / sizeof caps[0])];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		check_value(body, len, names[i], cap);
	check_one_click(ctype, body, len);
	check_one_click(ctype, NULL, 0);
	if (sel & 0x80)
		check_generated_multipart((uint8_t)(sel >> 2), (const uint8_t *)body, len);
	free(ctype);
	return 0;
}
