/* test_whsig: Standard Webhooks signatures, checked against the
 * specification's published test vector (the one its reference libraries
 * test against), so that a subscriber's stock library accepts ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "service/base/error.h"
#include "service/crypto/whsig.h"

static const char VECTOR_SECRET[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char VECTOR_ID[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const char VECTOR_BODY[] = "{\"test\": 2432232314}";
static const char VECTOR_SIG[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

static void test_the_published_vector_signs_exactly(void **state)
{
	(void)state;
	uint8_t key[WHSIG_KEY_MAX];
	size_t n = 0;
	char sig[WHSIG_SIG_CAP];
	assert_int_equal(whsig_secret_key(VECTOR_SECRET, key, &n), 0);
	assert_int_equal(n, 24);
	assert_int_equal(whsig_sign(key, n, VECTOR_ID, 1614265330, VECTOR_BODY, strlen(VECTOR_BODY), sig), 0);
	assert_string_equal(sig, VECTOR_SIG);
	/* One byte of the body, the id or the time changes the signature. */
	assert_int_equal(whsig_sign(key, n, VECTOR_ID, 1614265331, VECTOR_BODY, strlen(VECTOR_BODY), sig), 0);
	assert_string_not_equal(sig, VECTOR_SIG);
	assert_int_equal(whsig_sign(key, n, "msg_other", 1614265330, VECTOR_BODY, strlen(VECTOR_BODY), sig),
			 0);
	assert_string_not_equal(sig, VECTOR_SIG);
}

static void test_new_secrets_have_the_standard_form(void **state)
{
	(void)state;
	char a[WHSIG_SECRET_CAP], b[WHSIG_SECRET_CAP];
	uint8_t key[WHSIG_KEY_MAX];
	size_t n = 0;
	assert_int_equal(whsig_secret_new(a), 0);
	assert_int_equal(whsig_secret_new(b), 0);
	assert_int_equal(strncmp(a, "whsec_", 6), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(whsig_secret_key(a, key, &n), 0);
	assert_int_equal(n, WHSIG_KEY_BYTES);
}

static void test_malformed_secrets_are_refused(void **state)
{
	(void)state;
	uint8_t key[WHSIG_KEY_MAX];
	size_t n = 0;
	const char *bad[] = { "", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_abc", "whsec_****" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(whsig_secret_key(bad[i], key, &n), ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_published_vector_signs_exactly),
		cmocka_unit_test(test_new_secrets_have_the_standard_form),
		cmocka_unit_test(test_malformed_secrets_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
