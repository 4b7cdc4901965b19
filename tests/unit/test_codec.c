/* test_codec: normalisation, encodings, identifiers and time parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"

static void test_email_normalisation(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(normalize_email("  Ada.Lovelace@Example.ORG ", 26, out, sizeof out), 0);
	assert_string_equal(out, "ada.lovelace@example.org");
	const char *bad[] = { "",
			      "ada",
			      "@example.org",
			      "ada@",
			      "ada@example",
			      "a@b@c.org",
			      "ada lovelace@example.org",
			      "ada@example..org",
			      "ada@.org",
			      "<a@b.org>",
			      "ada@example.org.",
			      "a\x01@b.org" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(normalize_email(bad[i], strlen(bad[i]), out, sizeof out), ERR_INVALID);
	char longer[300];
	memset(longer, 'a', sizeof longer);
	memcpy(longer + 280, "@example.org", 13);
	assert_int_equal(normalize_email(longer, strlen(longer), out, sizeof out), ERR_INVALID);
}

static void test_phone_normalisation(void **state)
{
	(void)state;
	char out[32];
	assert_int_equal(normalize_phone("+44 (20) 7946-0000", 18, out, sizeof out), 0);
	assert_string_equal(out, "+442079460000");
	assert_int_equal(normalize_phone("020 7946 0000", 13, out, sizeof out), ERR_INVALID);
	assert_int_equal(normalize_phone("+44 20 7946 000x", 16, out, sizeof out), ERR_INVALID);
	assert_int_equal(normalize_phone("+1234", 5, out, sizeof out), ERR_INVALID);
	assert_int_equal(normalize_phone("+1234567890123456", 17, out, sizeof out), ERR_INVALID);
	assert_int_equal(normalize_phone("+44+2079460000", 14, out, sizeof out), ERR_INVALID);
}

static void test_base64url_round_trip_and_canonical_form(void **state)
{
	(void)state;
	uint8_t in[40], back[40];
	char enc[64];
	for (size_t n = 0; n <= sizeof in; n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		size_t e = b64url_encode(in, n, enc);
		assert_int_equal(b64url_decode(enc, e, back, sizeof back), (int)n);
		assert_memory_equal(in, back, n);
	}
	assert_int_equal(b64url_decode("AB", 2, back, sizeof back), ERR_INVALID); /* trailing bits */
	assert_int_equal(b64url_decode("A", 1, back, sizeof back), ERR_INVALID);
	assert_int_equal(b64url_decode("A+==", 4, back, sizeof back), ERR_INVALID);
	assert_int_equal(b64url_decode("AAAAAAAA", 8, back, 3), ERR_TOOBIG);
}

static void test_names_and_ids(void **state)
{
	(void)state;
	assert_true(is_name("marketing"));
	assert_true(is_name("partner_sharing2"));
	assert_false(is_name("Marketing"));
	assert_false(is_name("2fa"));
	assert_false(is_name(""));
	assert_false(is_name("a-b"));
	assert_true(is_contact_id("Zww_-3acJ7q5JNo4YtpWQg"));
	assert_false(is_contact_id("Zww_-3acJ7q5JNo4YtpWQ"));
	assert_false(is_contact_id("Zww_-3acJ7q5JNo4Ytp/Qg"));
	assert_false(is_contact_id(NULL));
}

static void test_utf8_validation(void **state)
{
	(void)state;
	assert_true(is_clean_utf8("Grüße, 你好", strlen("Grüße, 你好")));
	assert_false(is_clean_utf8("\xc3\x28", 2));	    /* bad continuation */
	assert_false(is_clean_utf8("\xc0\xaf", 2));	    /* overlong */
	assert_false(is_clean_utf8("\xed\xa0\x80", 3));	    /* surrogate */
	assert_false(is_clean_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(is_clean_utf8("a\0b", 3));
	assert_false(is_clean_utf8("\x1b[31m", 5));
	assert_false(is_clean_utf8("\xe4\xbd", 2)); /* truncated */
}

static void test_labels_and_principal_names(void **state)
{
	(void)state;
	char max[LIMIT_LABEL_BYTES + 2];
	assert_true(is_identifier("web:signup/v2+promo@2026_a.b-c", LIMIT_LABEL_BYTES));
	static const char *const bad_labels[] = { "",	 "has space", "tab\tx",	   "nl\nx",
						  "q\"", "a,b",	      "z\xc3\xab", "a;b" };
	for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
		assert_false(is_identifier(bad_labels[i], LIMIT_LABEL_BYTES));
	memset(max, 'a', sizeof max - 1);
	max[LIMIT_LABEL_BYTES] = '\0';
	assert_true(is_identifier(max, LIMIT_LABEL_BYTES));
	max[LIMIT_LABEL_BYTES] = 'a';
	max[LIMIT_LABEL_BYTES + 1] = '\0';
	assert_false(is_identifier(max, LIMIT_LABEL_BYTES)); /* refused, never cut */
	assert_false(is_identifier(NULL, LIMIT_LABEL_BYTES));

	static const char *const good[] = {
		"crm \"nightly\" sync",	   "Smith, Jane", "Zo\xc3\xab", "=cmd", "admin-1",
		"\xe5\x90\x8d\xe5\xad\x97"
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(is_principal_name(good[i]));
	static const char *const bad[] = { "",
					   "a\tb",
					   "a\nb",
					   "a\rb",
					   "customer",
					   "OPERATOR",
					   "System",
					   " x",
					   "x ",
					   "bidi\xe2\x80\xae"
					   "evil",
					   "ls\xe2\x80\xa8x",
					   "del\x7f",
					   "c1\xc2\x85"
					   "x",
					   "\xff" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(is_principal_name(bad[i]));
	char name[LIMIT_NAME_BYTES + 2];
	memset(name, 'n', sizeof name - 1);
	name[LIMIT_NAME_BYTES] = '\0';
	assert_true(is_principal_name(name));
	name[LIMIT_NAME_BYTES] = 'n';
	name[LIMIT_NAME_BYTES + 1] = '\0';
	assert_false(is_principal_name(name));

	/* The limit counts characters, as the API's maxLength does: 64 CJK
	 * characters (192 bytes) are a name, 65 are not. */
	char cjk[3 * (LIMIT_PRINCIPAL_CHARS + 1) + 1];
	for (int i = 0; i < LIMIT_PRINCIPAL_CHARS + 1; i++)
		memcpy(cjk + 3 * i, "\xe5\x90\x8d", 3); /* U+540D */
	cjk[3 * LIMIT_PRINCIPAL_CHARS] = '\0';
	assert_int_equal(utf8_chars(cjk, strlen(cjk)), LIMIT_PRINCIPAL_CHARS);
	assert_true(is_principal_name(cjk));
	assert_true(is_actor_name(cjk));
	cjk[3 * LIMIT_PRINCIPAL_CHARS] = '\xe5';
	cjk[3 * (LIMIT_PRINCIPAL_CHARS + 1)] = '\0';
	assert_false(is_principal_name(cjk));
	assert_false(is_actor_name(cjk));
}

static void test_time_parsing(void **state)
{
	(void)state;
	int64_t us;
	char buf[40];
	assert_int_equal(parse_time("1970-01-01T00:00:00Z", &us), 0);
	assert_int_equal(us, 0);
	assert_int_equal(parse_time("2024-02-29T12:34:56.5+02:00", &us), 0);
	format_time_us(us, buf, sizeof buf);
	assert_string_equal(buf, "2024-02-29T10:34:56.500000Z");
	assert_int_equal(parse_time("2023-02-29T00:00:00Z", &us), ERR_INVALID);
	assert_int_equal(parse_time("2024-13-01T00:00:00Z", &us), ERR_INVALID);
	assert_int_equal(parse_time("2024-01-01T00:00:00", &us), ERR_INVALID);
	assert_int_equal(parse_time("2024-01-01T00:00:00Zjunk", &us), ERR_INVALID);
	assert_int_equal(parse_time("yesterday", &us), ERR_INVALID);
}

/* The one formatter (format_time_us) against the C library's calendar,
 * which the old formatter used: every day from 1969 to 2101 (leap days,
 * century rules), and the microseconds around the epoch. */
static void test_time_formatting_matches_the_c_library(void **state)
{
	(void)state;
	char got[40], want[64], date[32];
	for (int64_t day = -366; day < 48000; day++) {
		int64_t us = day * 86400 * INT64_C(1000000) + INT64_C(45296789012); /* 12:34:56.789012 */
		time_t secs = (time_t)(day * 86400 + 45296);
		struct tm tm;
		gmtime_r(&secs, &tm);
		strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want, sizeof want, "%s.789012Z", date);
		format_time_us(us, got, sizeof got);
		assert_string_equal(got, want);
		int y, m, d;
		civil_from_days(day, &y, &m, &d);
		assert_int_equal(days_from_civil(y, m, d), day);
	}
	format_time_us(-1, got, sizeof got);
	assert_string_equal(got, "1969-12-31T23:59:59.999999Z");
	format_time_us(0, got, sizeof got);
	assert_string_equal(got, "1970-01-01T00:00:00.000000Z");
}

/* One hex decoder: any case for hex_decode, lowercase only where one text
 * per value matters (the audit trail, token hashes in the policy). */
static void test_hex_decoders(void **state)
{
	(void)state;
	uint8_t out[2];
	assert_int_equal(hex_decode("aBcD", out, 2), 0);
	assert_int_equal(out[0], 0xab);
	assert_int_equal(out[1], 0xcd);
	assert_int_equal(hex_decode("abc", out, 2), ERR_INVALID);
	assert_int_equal(hex_decode("abcg", out, 2), ERR_INVALID);
	assert_true(hex_decode_lower("abcd", 4, out, 2));
	assert_false(hex_decode_lower("aBcd", 4, out, 2));
	assert_false(hex_decode_lower("abc", 3, out, 2));
	assert_int_equal(hex_digit('F'), 15);
	assert_int_equal(hex_digit_lower('F'), -1);
}

/* One media-type matcher for the JSON bodies and the bulk uploads. */
static void test_media_types(void **state)
{
	(void)state;
	const char *params = NULL;
	assert_true(media_type_is("application/json", "application/json", NULL));
	assert_true(media_type_is("Application/JSON; charset=utf-8", "application/json", NULL));
	assert_true(media_type_is(" text/csv; header=absent", "text/csv", &params));
	assert_string_equal(params, "; header=absent");
	assert_false(media_type_is("application/jsonx", "application/json", NULL));
	assert_false(media_type_is("text/plain", "application/json", NULL));
	assert_false(media_type_is(NULL, "application/json", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_email_normalisation),
		cmocka_unit_test(test_phone_normalisation),
		cmocka_unit_test(test_base64url_round_trip_and_canonical_form),
		cmocka_unit_test(test_names_and_ids),
		cmocka_unit_test(test_utf8_validation),
		cmocka_unit_test(test_time_parsing),
		cmocka_unit_test(test_time_formatting_matches_the_c_library),
		cmocka_unit_test(test_hex_decoders),
		cmocka_unit_test(test_media_types),
		cmocka_unit_test(test_labels_and_principal_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
