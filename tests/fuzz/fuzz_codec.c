/*
 * fuzz_codec: the pure helpers in service/base/codec.c on arbitrary bytes.
 *
 * The first byte picks the function and the output capacity; the rest is the
 * input. Invariants checked (abort on violation):
 * - normalize_email/normalize_phone never write past the capacity given, and
 *   on success produce a NUL-terminated value that normalises to itself;
 * - parse_time accepts only what it can format back into a time that parses
 *   to the same instant;
 * - b64url_decode stays within out_cap and round-trips through b64url_encode
 *   (decoding is canonical: one string per byte sequence);
 * - is_clean_utf8 agrees with a straightforward reference decoder;
 * - hex_decode round-trips through hex_encode.
 * Output buffers are heap allocations of exactly the stated capacity, so
 * ASan sees any overrun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/codec.h"
#include "service/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_email(const char *in, size_t len, size_t cap)
{
	char *out = malloc(cap);
	if (out == NULL)
		return;
	int rc = normalize_email(in, len, out, cap);
	if (rc == 0) {
		size_t n = strnlen(out, cap);
		if (n == cap || n == 0 || n > 254 || strchr(out, '@') == NULL)
			abort();
		char *again = malloc(cap);
		if (again == NULL || normalize_email(out, n, again, cap) != 0 || strcmp(out, again) != 0)
			abort();
		free(again);
	} else if (rc != ERR_INVALID) {
		abort();
	}
	free(out);
}

static void check_phone(const char *in, size_t len, size_t cap)
{
	char *out = malloc(cap);
	if (out == NULL)
		return;
	int rc = normalize_phone(in, len, out, cap);
	if (rc == 0) {
		size_t n = strnlen(out, cap);
		if (n == cap || n < 9 || n > 16 || out[0] != '+')
			abort();
		for (size_t i = 1; i < n; i++)
			if (out[i] < '0' || out[i] > '9')
				abort();
		char *again = malloc(cap);
		if (again == NULL || normalize_phone(out, n, again, cap) != 0 || strcmp(out, again) != 0)
			abort();
		free(again);
	} else if (rc != ERR_INVALID) {
		abort();
	}
	free(out);
}

static void check_time(const char *s)
{
	int64_t us = 0, back = 0;
	if (parse_time(s, &us) != 0)
		return;
	char text[64];
	format_time_us(us, text, sizeof text);
	/* An offset can carry an accepted time just outside 1970..9999, whose
	 * text parse_time then refuses; inside the range it must round-trip. */
	if (us < 0 || text[4] != '-')
		return;
	if (parse_time(text, &back) != 0 || back != us)
		abort();
}

static void check_b64(const char *in, size_t len, size_t cap)
{
	uint8_t *out = malloc(cap ? cap : 1);
	if (out == NULL)
		return;
	int n = b64url_decode(in, len, out, cap);
	if (n >= 0) {
		if ((size_t)n > cap || (size_t)n != len * 3 / 4)
			abort();
		char *enc = malloc(4 * ((size_t)n / 3 + 1) + 1);
		if (enc == NULL)
			abort();
		size_t m = b64url_encode(out, (size_t)n, enc);
		if (m != len || memcmp(enc, in, len) != 0)
			abort();
		free(enc);
	} else if (n != ERR_INVALID && n != ERR_TOOBIG) {
		abort();
	}
	free(out);
}

/* A reference: valid UTF-8 (shortest form, no surrogates, <= U+10FFFF)
 * without C0/C1 controls other than tab, CR and LF, and without DEL. */
static bool ref_clean(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n;
		uint8_t c = s[i];
		if (c < 0x80) {
			cp = c;
			n = 1;
		} else if (c >= 0xc2 && c <= 0xdf) {
			cp = c & 0x1f;
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			cp = c & 0x0f;
			n = 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			cp = c & 0x07;
			n = 4;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7f && cp < 0xa0))
			return false;
		i += n;
	}
	return true;
}

static void check_hex(const uint8_t *in, size_t len)
{
	char *hex = malloc(2 * len + 1);
	uint8_t *back = malloc(len ? len : 1);
	if (hex == NULL || back == NULL)
		abort();
	hex_encode(in, len, hex);
	if (hex_decode(hex, back, len) != 0 || memcmp(back, in, len) != 0)
		abort();
	free(hex);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *in = data + 1;
	size_t len = size - 1;
	/* A NUL-terminated copy on the heap, exactly sized. */
	char *s = malloc(len + 1);
	if (s == NULL)
		return 0;
	memcpy(s, in, len);
	s[len] = '\0';
	size_t cap = (size_t)(sel >> 3) * 16 + 1; /* 1 .. 497 */
	switch (sel & 7) {
	case 0:
		check_email(s, len, cap < 255 ? 255 : cap); /* the documented minimum */
		break;
	case 1: check_phone(s, len, cap); break;
	case 2: check_time(s); break;
	case 3: check_b64(s, len, cap - 1); break;
	case 4:
		if (is_clean_utf8(s, len) != ref_clean(in, len))
			abort();
		break;
	case 5: check_hex(in, len); break;
	case 6: {
		/* The validators used by the router: total functions on any string. */
		bool n = is_name(s), id = is_contact_id(s);
		if ((n && strlen(s) > 64) || (id && strlen(s) != 22))
			abort();
		break;
	}
	default:
		check_email(s, len, 255);
		check_phone(s, len, 32);
		check_time(s);
		break;
	}
	free(s);
	return 0;
}
