/*
 * test_reply: the one place an error code becomes a reply (app_fail in
 * service/reply.c). A handler returns a code, with a reason set by
 * app_reason; the reply has the status and type of problem.c's table, the
 * detail err_set() gave and the reason; it is sent at once when nothing was
 * audited, and only after the commit when an entry was begun. A job's
 * apply error is rendered by the same function.
 *
 * The HTTP layer and the writer are replaced by the recorders below, so
 * the test sees exactly what would have been sent and submitted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "service/app.h"
#include "service/base/error.h"

/* ---- recorders for the HTTP layer and the writer ---- */

static struct {
	int responses, status, submits, suspends, resumes;
	char body[4096], headers[512];
	struct writer_job *job;
} rec;

void http_add_header(struct http_request *req, const char *name, const char *value)
{
	(void)req;
	size_t n = strlen(rec.headers);
	snprintf(rec.headers + n, sizeof rec.headers - n, "%s: %s\n", name, value);
}

const char *http_client(const struct http_request *req)
{
	(void)req;
	return "127.0.0.1";
}

const char *http_path(const struct http_request *req)
{
	(void)req;
	return "/v1/test";
}

const char *http_request_id(const struct http_request *req)
{
	(void)req;
	return "req-1";
}

void http_respond(struct http_request *req, int status, const char *content_type, char *body, size_t len)
{
	(void)req;
	(void)content_type;
	rec.responses++;
	rec.status = status;
	snprintf(rec.body, sizeof rec.body, "%.*s", (int)len, body ? body : "");
	free(body);
}

void http_respond_stream(struct http_request *req, int status, const char *content_type, http_reader read,
			 void *arg, void (*free_arg)(void *))
{
	(void)req;
	(void)content_type;
	(void)read;
	rec.responses++;
	rec.status = status;
	if (free_arg != NULL)
		free_arg(arg);
}

void http_suspend(struct http_request *req)
{
	(void)req;
	rec.suspends++;
}

void http_resume(struct http_request *req)
{
	(void)req;
	rec.resumes++;
}

int writer_submit(struct writer *log, struct writer_job *job)
{
	(void)log;
	rec.submits++;
	rec.job = job;
	return 0;
}

enum audit_fault writer_fault(struct writer *log, char *reason, size_t cap)
{
	(void)log;
	if (reason != NULL && cap > 0)
		reason[0] = '\0';
	return AUDIT_FAULT_NONE;
}

/* ---- fixture ---- */

static struct app app;

static struct reqctx *new_ctx(void)
{
	memset(&rec, 0, sizeof rec);
	struct reqctx *ctx = calloc(1, sizeof *ctx);
	assert_non_null(ctx);
	ctx->app = &app;
	ctx->http = (struct http_request *)&rec; /* never dereferenced by the recorders */
	ctx->authenticated = true;
	snprintf(ctx->actor, sizeof ctx->actor, "marketing-1");
	snprintf(ctx->role, sizeof ctx->role, "marketing");
	err_clear();
	return ctx;
}

static void free_ctx(struct reqctx *ctx)
{
	reply_drop(ctx);
	free(ctx);
}

static void test_a_returned_code_is_answered_from_the_table_with_its_reason(void **state)
{
	(void)state;
	struct reqctx *ctx = new_ctx();
	int rc = app_reason(ctx, err_set(ERR_UNPROCESSABLE, "unknown purpose \"x\""), REASON_UNKNOWN_PURPOSE);
	assert_int_equal(rc, ERR_UNPROCESSABLE);
	app_fail(ctx, rc);
	/* Nothing was audited: sent at once, never submitted. */
	assert_int_equal(rec.responses, 1);
	assert_int_equal(rec.submits, 0);
	assert_int_equal(rec.status, 422);
	assert_non_null(strstr(rec.body, "\"type\":\"https://consentd.dev/problems/unprocessable\""));
	assert_non_null(strstr(rec.body, "\"status\":422"));
	assert_non_null(strstr(rec.body, "\"detail\":\"unknown purpose \\\"x\\\"\""));
	assert_non_null(strstr(rec.body, "\"reason\":\"unknown_purpose\""));
	assert_non_null(strstr(rec.body, "\"request_id\":\"req-1\""));
	/* Once answered, a second failure changes nothing. */
	app_fail(ctx, ERR_INTERNAL);
	assert_int_equal(rec.responses, 1);
	free_ctx(ctx);
}

static void test_an_audited_refusal_leaves_only_after_its_commit(void **state)
{
	(void)state;
	struct reqctx *ctx = new_ctx();
	audit_begin(ctx, "contacts.read", "", "marketing", NULL);
	audit_decide(ctx, false, "unknown_contact");
	app_fail(ctx,
		 app_reason(ctx, err_set(ERR_NOTFOUND, "no contact with this id"), REASON_UNKNOWN_CONTACT));
	assert_int_equal(rec.submits, 1);
	assert_int_equal(rec.responses, 0); /* not before the entry is durable */
	assert_int_equal(rec.suspends, 1);
	assert_ptr_equal(rec.job, &ctx->job);
	assert_string_equal(ctx->job.entry.reason, "unknown_contact");
	rec.job->done(rec.job, 0); /* the commit thread: durable */
	assert_int_equal(rec.responses, 1);
	assert_int_equal(rec.resumes, 1);
	assert_int_equal(rec.status, 404);
	assert_non_null(strstr(rec.body, "problems/not-found\""));
	assert_non_null(strstr(rec.body, "\"reason\":\"unknown_contact\""));
	free_ctx(ctx);
}

static void test_unavailable_says_when_to_retry(void **state)
{
	(void)state;
	struct reqctx *ctx = new_ctx();
	app_fail(ctx, err_set(ERR_UNAVAILABLE, "the store is not reachable"));
	assert_int_equal(rec.status, 503);
	assert_non_null(strstr(rec.headers, "Retry-After: 5\n"));
	assert_null(strstr(rec.body, "\"reason\""));
	free_ctx(ctx);
}

static void test_an_apply_error_is_rendered_by_the_same_function(void **state)
{
	(void)state;
	struct reqctx *ctx = new_ctx();
	audit_begin(ctx, "contacts.create", "", NULL, NULL);
	audit_decide(ctx, true, "created");
	reply_json(ctx, 201, json_pack("{s:s}", "id", "x"));
	app_commit(ctx);
	assert_int_equal(rec.submits, 1);
	/* The commit thread: the apply refused (a duplicate), the entry says why. */
	audit_decide(ctx, false, "duplicate_email");
	rec.job->apply_rc = ERR_CONFLICT;
	snprintf(rec.job->apply_msg, sizeof rec.job->apply_msg, "a contact with this email exists");
	rec.job->done(rec.job, 0);
	assert_int_equal(rec.status, 409);
	assert_non_null(strstr(rec.body, "problems/conflict\""));
	assert_non_null(strstr(rec.body, "\"detail\":\"a contact with this email exists\""));
	assert_non_null(strstr(rec.body, "\"reason\":\"duplicate_email\""));
	free_ctx(ctx);
}

static void test_rate_limiting_is_a_429_of_the_table(void **state)
{
	(void)state;
	struct reqctx *ctx = new_ctx();
	app_fail(ctx,
		 app_reason(ctx, err_set(ERR_RATE_LIMITED, "too many wrong tokens"), REASON_RATE_LIMITED));
	assert_int_equal(rec.status, 429);
	assert_non_null(strstr(rec.body, "problems/too-many-requests\""));
	assert_non_null(strstr(rec.body, "\"reason\":\"rate_limited\""));
	free_ctx(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_returned_code_is_answered_from_the_table_with_its_reason),
		cmocka_unit_test(test_an_audited_refusal_leaves_only_after_its_commit),
		cmocka_unit_test(test_unavailable_says_when_to_retry),
		cmocka_unit_test(test_an_apply_error_is_rendered_by_the_same_function),
		cmocka_unit_test(test_rate_limiting_is_a_429_of_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
