/* test_mail: rendering a message (service/mail.c mail_render) and the retry
 * backoff: what every relay and mail client relies on (ASCII only on the
 * wire, lines within 78 characters, RFC 2047 words that never split a
 * character, base64 parts that decode to the composed text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/mail.h"

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 text (line breaks skipped) from s up to end into out. */
static size_t b64dec(const char *s, const char *end, char *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (; s < end && *s != '='; s++) {
		int v = b64val(*s);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			assert_true(n + 1 < cap);
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return n;
}

static struct mailq_message *message(void)
{
	struct mailq_message *m = calloc(1, sizeof *m);
	assert_non_null(m);
	snprintf(m->id, sizeof m->id, "AbCdEfGhIjKlMnOpQrStUv");
	snprintf(m->link_id, sizeof m->link_id, "link-1");
	snprintf(m->lang, sizeof m->lang, "zh-CN");
	snprintf(m->to, sizeof m->to, "bob@example.org");
	snprintf(m->from_name, sizeof m->from_name, "Acme \"Shoes\" 鞋业");
	/* Long enough to need several encoded words, all three-byte characters. */
	snprintf(m->subject, sizeof m->subject,
		 "请确认您的订阅：仅在您同意的情况下向您发送有关我们产品的新闻优惠和促销信息");
	snprintf(m->body, sizeof m->body, "您好：\r\n\r\n  https://x.example/p/T0k.en\r\n");
	snprintf(m->html, sizeof m->html,
		 "<!DOCTYPE html>\r\n<html lang=\"zh-CN\"><p>您好 &amp; 再见</p></html>\r\n");
	return m;
}

static void test_a_rendered_message_is_ascii_in_short_lines_with_both_parts_decoding_back(void **state)
{
	(void)state;
	struct mailq_message *m = message();
	char *text = NULL, *dec = malloc(MAIL_HTML_CAP);
	size_t len = 0;
	assert_non_null(dec);
	assert_int_equal(mail_render(m, "privacy@acme.example", 1764547200000000, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	for (size_t i = 0; i < len; i++) {
		assert_true((unsigned char)text[i] < 0x80);
		if (text[i] == '\n')
			assert_true(i > 0 && text[i - 1] == '\r'); /* no bare line feed */
	}
	for (const char *l = text; *l;) {
		const char *e = strstr(l, "\r\n");
		assert_non_null(e);
		assert_true(e - l <= 78);
		l = e + 2;
	}
	assert_non_null(strstr(text, "\r\nTo: <bob@example.org>\r\n"));
	assert_non_null(strstr(text, "<privacy@acme.example>\r\n"));
	assert_non_null(strstr(text, "Message-ID: <AbCdEfGhIjKlMnOpQrStUv@acme.example>"));
	assert_non_null(strstr(text, "Content-Language: zh-CN"));
	assert_non_null(strstr(
		text,
		"Content-Type: multipart/alternative;\r\n boundary=\"=_consentd_AbCdEfGhIjKlMnOpQrStUv\""));
	/* Each part decodes to exactly what was composed. */
	const char *plain = strstr(
		text, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	const char *html = strstr(
		text, "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	assert_non_null(plain);
	assert_non_null(html);
	plain = strstr(plain, "\r\n\r\n") + 4;
	html = strstr(html, "\r\n\r\n") + 4;
	b64dec(plain, strstr(plain, "--=_consentd_"), dec, MAIL_HTML_CAP);
	assert_string_equal(dec, m->body);
	b64dec(html, strstr(html, "--=_consentd_"), dec, MAIL_HTML_CAP);
	assert_string_equal(dec, m->html);
	assert_non_null(strstr(text, "--=_consentd_AbCdEfGhIjKlMnOpQrStUv--\r\n"));
	free(text);
	free(dec);
	free(m);
}

static void test_the_subject_is_encoded_words_that_never_split_a_character(void **state)
{
	(void)state;
	struct mailq_message *m = message();
	char *text = NULL, joined[512] = "", dec[256];
	size_t len = 0;
	assert_int_equal(mail_render(m, "privacy@acme.example", 0, &text, &len), 0);
	const char *s = strstr(text, "\r\nSubject: ") + 11;
	const char *end = strstr(s, "\r\nDate: ");
	int words = 0;
	while (s < end) {
		const char *w = strstr(s, "=?UTF-8?B?");
		if (w == NULL || w >= end)
			break;
		const char *q = strstr(w + 10, "?=");
		assert_true(q - w + 2 <= 75); /* RFC 2047: at most 75 characters a word */
		size_t n = b64dec(w + 10, q, dec, sizeof dec);
		/* A word ends on a whole character: its last byte is not followed
		 * by a continuation byte in the next word. */
		assert_true(n > 0);
		for (size_t i = 0; i < n;) {
			unsigned char c = (unsigned char)dec[i];
			size_t l = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			assert_true(i + l <= n);
			i += l;
		}
		strcat(joined, dec);
		words++;
		s = q + 2;
	}
	assert_true(words >= 2);
	assert_string_equal(joined, m->subject);
	/* The sender's name has quotes and Chinese: encoded words too. */
	assert_non_null(strstr(text, "From: =?UTF-8?B?"));
	free(text);
	free(m);
}

static void test_the_retry_backoff_doubles_from_the_base_up_to_the_bound(void **state)
{
	(void)state;
	assert_int_equal(mail_retry_delay_ms(1000, 0), 1000);
	assert_int_equal(mail_retry_delay_ms(1000, 1), 2000);
	assert_int_equal(mail_retry_delay_ms(1000, 3), 8000);
	assert_int_equal(mail_retry_delay_ms(1000, 40), MAIL_RETRY_MAX_MS);
	assert_int_equal(mail_retry_delay_ms(MAIL_RETRY_BASE_MS, 1000), MAIL_RETRY_MAX_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_a_rendered_message_is_ascii_in_short_lines_with_both_parts_decoding_back),
		cmocka_unit_test(test_the_subject_is_encoded_words_that_never_split_a_character),
		cmocka_unit_test(test_the_retry_backoff_doubles_from_the_base_up_to_the_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
