/* test_router: patterns, parameter validation, 404 versus 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "service/app.h"
#include "service/base/error.h"
#include "service/router.h"

#define ID "Zww_-3acJ7q5JNo4YtpWQg"

static int match(const char *method, const char *path, const struct route **r,
		 char params[2][ROUTER_PARAM_CAP], char allow[ROUTER_ALLOW_CAP])
{
	return router_match(method, path, r, params, allow);
}

static void test_routes_and_parameters(void **state)
{
	(void)state;
	const struct route *r;
	char p[2][ROUTER_PARAM_CAP], allow[ROUTER_ALLOW_CAP];
	assert_int_equal(match("GET", "/v1/contacts/" ID, &r, p, allow), 0);
	assert_ptr_equal(r->handler, h_contact_get);
	assert_string_equal(p[0], ID);
	assert_int_equal(match("PUT", "/v1/contacts/" ID "/consents/marketing", &r, p, allow), 0);
	assert_ptr_equal(r->handler, h_consent_put);
	assert_string_equal(p[1], "marketing");
	assert_int_equal(match("GET", "/healthz", &r, p, allow), 0);
	assert_true(r->public);
	assert_int_equal(match("POST", "/v1/contacts", &r, p, allow), 0);
	assert_false(r->public);
}

static void test_malformed_parameters_are_not_found(void **state)
{
	(void)state;
	const struct route *r;
	char p[2][ROUTER_PARAM_CAP], allow[ROUTER_ALLOW_CAP];
	const char *paths[] = {
		"/v1/contacts/short",
		"/v1/contacts/" ID "x",
		"/v1/contacts/../../etc/passwd",
		"/v1/contacts/" ID "/",
		"/v1/contacts/" ID "/consents/Marketing",
		"/v1/contacts/" ID "/consents/mark%20eting",
		"/v1/contacts/" ID "/consents/" ID "/x",
		"//v1/contacts",
		"v1/contacts",
		"",
		"/v1/contacts/\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f",
	};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		assert_int_equal(match("GET", paths[i], &r, p, allow), ERR_NOTFOUND);
	assert_int_equal(match("GET", NULL, &r, p, allow), ERR_NOTFOUND);
}

static void test_wrong_method_lists_the_allowed_ones(void **state)
{
	(void)state;
	const struct route *r;
	char p[2][ROUTER_PARAM_CAP], allow[ROUTER_ALLOW_CAP];
	assert_int_equal(match("PUT", "/v1/contacts/" ID, &r, p, allow), ERR_UNSUPPORTED);
	assert_non_null(strstr(allow, "GET"));
	assert_non_null(strstr(allow, "PATCH"));
	assert_non_null(strstr(allow, "DELETE"));
	assert_int_equal(match("TRACE", "/healthz", &r, p, allow), ERR_UNSUPPORTED);
	/* A GET route also answers HEAD (RFC 9110), so Allow names both. */
	assert_string_equal(allow, "GET, HEAD");
	assert_int_equal(match("HEAD", "/healthz", &r, p, allow), 0);
	assert_string_equal(r->method, "GET");
	assert_int_equal(match("HEAD", "/v1/consent/check", &r, p, allow), ERR_UNSUPPORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_and_parameters),
		cmocka_unit_test(test_malformed_parameters_are_not_found),
		cmocka_unit_test(test_wrong_method_lists_the_allowed_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
