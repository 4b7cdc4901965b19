/*
 * app: the service's lifecycle (open, serve until a signal, reload on
 * SIGHUP, close) and request dispatch (the HTTP callbacks: route,
 * authenticate, handler). The other concerns have their own files:
 * problem.c (the error-to-status table), auth.c (tokens and the principal
 * cache), reply.c (commit-then-reply and the audit entry helpers). See
 * app.h for the flow.
 */
#include "service/app.h"

#include "service/auditwatch.h"
#include "service/outbound.h"
#include "service/auth.h"
#include "service/mail.h"
#include "service/prefpage.h"
#include "service/problem.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/keycheck.h"
#include "service/crypto/fieldcrypt.h"
#include "service/crypto/provsig.h"
#include "service/snscert.h"
#include "service/router.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct policy *app_policy(struct app *app)
{
	pthread_mutex_lock(&app->policy_lock);
	struct policy *p = policy_ref(app->policy);
	pthread_mutex_unlock(&app->policy_lock);
	return p;
}

/* The name this instance claims outbox work under: its host, its listen
 * address and a hash (FNV-1a) of its data folder's path. Stable across
 * restarts, so an instance killed holding a claim takes it up again when
 * it comes back instead of waiting for it to run out; different for every
 * instance of a fleet, since two instances on one host have their own data
 * folders (and hosts have their own names). */
static void instance_name(char *out, size_t cap, const struct config *cfg)
{
	char host[64] = "";
	uint64_t h = 1469598103934665603ULL;
	if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	for (const char *p = cfg->dir; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	snprintf(out, cap, "%s@%s:%u/%016llx", host, cfg->address, (unsigned)cfg->port,
		 (unsigned long long)h);
}

/* app_policy in the shape struct service_env wants. */
static struct policy *env_policy(void *arg)
{
	return app_policy(arg);
}

/* ---- bodies ---- */

int app_body(struct reqctx *ctx, json_t **out)
{
	size_t len;
	const char *body = http_body(ctx->http, &len);
	json_error_t jerr;
	*out = NULL;
	if (http_body_too_big(ctx->http))
		return err_set(ERR_TOOBIG, "the body is larger than %d bytes", LIMIT_BODY_BYTES);
	if (!media_type_is(http_header(ctx->http, "Content-Type"), "application/json", NULL))
		return err_set(ERR_UNSUPPORTED, "send the body as application/json");
	if (body == NULL || len == 0)
		return err_set(ERR_INVALID, "the body is empty; a JSON object is expected");
	if (!json_depth_within(body, len, LIMIT_JSON_DEPTH))
		return err_set(ERR_INVALID, "JSON nesting is deeper than %d", LIMIT_JSON_DEPTH);
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return err_set(ERR_INVALID, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
			       jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(ERR_INVALID, "the body must be a JSON object");
	}
	*out = root;
	return 0;
}

/* ---- http callbacks ---- */

static int ensure_reader(struct reqctx *ctx)
{
	if (ctx->rd == NULL)
		return store_conn_get(ctx->app->store, &ctx->rd);
	return 0;
}

static void on_headers(struct http_request *req, void *arg)
{
	struct app *app = arg;
	/* Each request starts with a clean error state: a message or code left
	 * by an earlier request on this thread must never decide this one. */
	err_clear();
	/* The audit entry is several kilobytes of fixed buffers; zero everything
	 * but it (audit_begin fills it), since this runs for every request. */
	_Static_assert(offsetof(struct writer_job, entry) == 0, "entry leads struct writer_job");
	struct reqctx *ctx = malloc(sizeof *ctx);
	if (ctx == NULL)
		return;
	size_t job_at = offsetof(struct reqctx, job), entry_end = job_at + sizeof(struct audit_entry);
	memset(ctx, 0, job_at);
	memset((char *)ctx + entry_end, 0, sizeof *ctx - entry_end);
	ctx->app = app;
	ctx->http = req;
	http_set_state(req, ctx);
	atomic_fetch_add(&app->metrics.requests, 1);
	ctx->policy = app_policy(app);

	char allow[ROUTER_ALLOW_CAP];
	int rc = router_match(http_method(req), http_path(req), &ctx->route, ctx->param, allow);
	if (rc != 0)
		return; /* answered in on_complete */
	uint64_t limit = ctx->route->body_limit ? ctx->route->body_limit : LIMIT_BODY_BYTES;
	http_set_body_limit(req, limit);
	const char *cl = http_header(req, "Content-Length");
	if (cl != NULL && strtoull(cl, NULL, 10) > limit) {
		app_fail(ctx, err_set(ERR_TOOBIG, "the body is larger than %llu bytes",
				      (unsigned long long)limit));
		return;
	}
	if (ctx->route->stream != NULL) {
		http_set_streaming(req);
		const char *reason = NULL;
		if (ensure_reader(ctx) == 0 && auth_request(ctx, &reason) == 0) {
			ctx->stream_rc = ctx->route->stream->begin(ctx);
			/* Body chunks may set other messages before finish runs. */
			if (ctx->stream_rc != 0)
				snprintf(ctx->stream_begin_msg, sizeof ctx->stream_begin_msg, "%s",
					 err_msg());
		} else {
			ctx->stream_rc = ERR_UNAUTHENTICATED;
		}
	}
}

static void on_body(struct http_request *req, const char *data, size_t len, void *arg)
{
	(void)arg;
	struct reqctx *ctx = http_state(req);
	if (ctx == NULL || ctx->stream_rc != 0 || ctx->route == NULL || ctx->route->stream == NULL)
		return;
	err_clear();
	ctx->stream_rc = ctx->route->stream->chunk(ctx, data, len);
	/* Kept with the request: other requests run on this thread before
	 * finish does, and each clears the thread's error state. */
	if (ctx->stream_rc != 0)
		snprintf(ctx->stream_msg, sizeof ctx->stream_msg, "%s", err_msg());
}

/* code is authenticate()'s own result, never the thread's last error: that
 * may be left over from another request served on this thread. */
static void refuse_auth(struct reqctx *ctx, const char *reason, int code)
{
	atomic_fetch_add(&ctx->app->metrics.auth_failures, 1);
	if (code != ERR_UNAVAILABLE)
		code = ERR_UNAUTHENTICATED;
	audit_begin(ctx, "auth.failure", NULL, NULL, NULL);
	audit_decide(ctx, false, reason);
	char detail[160];
	snprintf(detail, sizeof detail, "%s %s", http_method(ctx->http),
		 ctx->route ? ctx->route->pattern : "");
	audit_detail(ctx, json_pack("{s:s}", "route", detail));
	app_fail(ctx, code); /* committed: the refusal is on the record */
}

static void on_complete(struct http_request *req, void *arg)
{
	struct app *app = arg;
	struct reqctx *ctx = http_state(req);
	char allow[ROUTER_ALLOW_CAP];
	int rc;
	if (ctx == NULL)
		return; /* out of memory: http answers 500 */
	/* Callbacks of other connections may have run on this thread since
	 * on_headers; only this request's own saved error counts. */
	err_clear();
	if (ctx->stream_rc != 0 && ctx->stream_msg[0] != '\0')
		err_set(ctx->stream_rc, "%s", ctx->stream_msg);
	if (ctx->route == NULL) {
		rc = router_match(http_method(req), http_path(req), &ctx->route, ctx->param, allow);
		if (rc != ERR_UNSUPPORTED) {
			app_fail(ctx, ERR_NOTFOUND);
			return;
		}
		/* 405 is the router's alone (error.h's ERR_UNSUPPORTED is 415). */
		reply_problem_status(ctx, 405, "method-not-allowed", "Method not allowed", err_msg(), NULL);
		http_add_header(req, "Allow", allow);
		app_send(ctx);
		return;
	}
	if (ensure_reader(ctx) != 0) {
		app_fail(ctx, ERR_UNAVAILABLE);
		return;
	}
	if (!ctx->route->public && !ctx->authenticated) {
		const char *reason = "unknown_token";
		int arc = auth_request(ctx, &reason);
		if (arc != 0) {
			refuse_auth(ctx, reason, arc);
			return;
		}
	}
	if (ctx->route->stream != NULL) {
		if (ctx->stream_rc == ERR_UNAUTHENTICATED && !ctx->authenticated) {
			const char *reason = "unknown_token";
			refuse_auth(ctx, reason, auth_request(ctx, &reason));
			return;
		}
		if (http_body_too_big(req)) {
			app_fail(ctx, err_set(ERR_TOOBIG, "the body is larger than allowed"));
			return;
		}
		rc = ctx->route->stream->finish(ctx);
	} else {
		rc = ctx->route->handler(ctx);
	}
	if (rc != 0 && !ctx->replied) {
		/* The one place a handler's error becomes its reply. */
		app_fail(ctx, rc);
	} else if (!ctx->replied && ctx->audit_begun) {
		/* A prepared reply whose entry was begun leaves only after the
		 * entry is durable, never unaudited. */
		app_commit(ctx);
	} else if (!ctx->replied) {
		/* A handler that prepared a reply without sending it. */
		app_send(ctx);
	}
	(void)app;
}

static void on_free(struct http_request *req, void *arg)
{
	struct app *app = arg;
	struct reqctx *ctx = http_state(req);
	if (ctx == NULL)
		return;
	if (ctx->stream_state != NULL && ctx->route != NULL && ctx->route->stream != NULL)
		ctx->route->stream->free(ctx->stream_state);
	if (ctx->state != NULL && ctx->state_free != NULL)
		ctx->state_free(ctx->state);
	reply_drop(ctx);
	store_conn_put(app->store, ctx->rd);
	policy_unref(ctx->policy);
	free(ctx);
}

/* ---- lifecycle ---- */

static int read_file(const char *path, char **out, bool secret)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	*out = NULL;
	if (fd < 0)
		return err_set(ERR_NOTFOUND, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_size > LIMIT_PEM_FILE_BYTES) {
		close(fd);
		return err_set(ERR_INVALID, "%s is not a small regular file", path);
	}
	if (secret && (rc = crypto_key_file_private(path, st.st_mode)) != 0) {
		close(fd);
		return rc;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		rc = err_set(ERR_IO, "cannot read %s", path);
	} else {
		buf[st.st_size] = '\0';
		*out = buf;
	}
	close(fd);
	return rc;
}

static void print_policy_errors(struct policy_errors *errs)
{
	if (errs != NULL)
		policy_errors_print(errs, stderr);
}

int app_reload_policy(struct app *app)
{
	struct policy *next = NULL;
	struct policy_errors *errs = NULL;
	struct writer_job job;
	memset(&job, 0, sizeof job);
	int rc = policy_load_file(&next, app->cfg.policy, &errs);
	audit_entry_fill(&job.entry, "system", "", "policy.reload", "", "", "", rc == 0 ? "allow" : "deny",
			 rc == 0 ? "valid" : "invalid");
	if (rc != 0) {
		fprintf(stderr, "consentd: policy reload refused; the previous policy stays live:\n");
		print_policy_errors(errs);
	}
	policy_errors_free(errs);
	/* The new policy goes live only once its entry is durable: a policy
	 * that decided requests without a record of when it arrived would make
	 * those decisions unexplainable. */
	int arc = writer_run(app->writer, &job);
	if (rc == 0 && arc != 0) {
		fprintf(stderr, "consentd: policy reload refused, the audit entry cannot be written; "
				"the previous policy stays live\n");
		policy_unref(next);
		return err_set(ERR_UNAVAILABLE, "the policy reload cannot be audited");
	}
	if (rc == 0) {
		pthread_mutex_lock(&app->policy_lock);
		struct policy *old = app->policy;
		app->policy = next;
		pthread_mutex_unlock(&app->policy_lock);
		policy_unref(old);
		fprintf(stderr, "consentd: policy reloaded from %s\n", app->cfg.policy);
	}
	return rc;
}

int app_reload_keys(struct app *app)
{
	/* In place: the keyring only takes the versions it lacks, so any
	 * number of SIGHUPs costs no memory and never runs out of room. */
	int added = 0;
	int rc = keyring_refresh(atomic_load(&app->keys), &added);
	if (rc != 0) {
		fprintf(stderr, "consentd: key reload incomplete, the loaded keys stay in use: %s\n",
			err_msg());
		return rc;
	}
	fprintf(stderr, "consentd: keys reloaded (master key version %d)\n",
		keyring_current_version(atomic_load(&app->keys)));
	return 0;
}

/* The test-only clock: CONSENTD_TEST_CLOCK_OFFSET_S moves now_us() by that
 * many seconds, honoured only together with CONSENTD_TEST_FAULTS=1 (the
 * store's test hooks), so a production start can never run on a shifted
 * clock by accident. */
static void app_test_clock(void)
{
	const char *hooks = getenv("CONSENTD_TEST_FAULTS"), *off = getenv("CONSENTD_TEST_CLOCK_OFFSET_S");
	char *end = NULL;
	if (hooks == NULL || strcmp(hooks, "1") != 0 || off == NULL || *off == '\0')
		return;
	long long s = strtoll(off, &end, 10);
	if (*end != '\0' || s < 0 || s > 100LL * 366 * 86400)
		return;
	clock_set_test_offset_s((int64_t)s);
	fprintf(stderr, "consentd: TEST CLOCK: now is shifted by %lld s\n", s);
}

int app_open(struct app *app, const char *dir, const char *listen_override)
{
	app_test_clock();
	struct policy_errors *errs = NULL;
	char *cert = NULL, *key = NULL;
	int rc;
	memset(app, 0, sizeof *app);
	pthread_mutex_init(&app->policy_lock, NULL);
	app->started_us = now_us();
	if (auth_cache_new(&app->auth_cache) != 0)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = config_load(&app->cfg, dir)) != 0)
		return rc;
	prefpage_set_organisation(app->cfg.org.name, app->cfg.org.postal_address,
				  app->cfg.org.privacy_policy_url, app->cfg.org.contact_email);
	if (listen_override != NULL &&
	    (rc = config_parse_listen(listen_override, app->cfg.address, sizeof app->cfg.address,
				      &app->cfg.port)) != 0)
		return rc;
	struct keyring *kr = NULL;
	if ((rc = keyring_open(&kr, app->cfg.keys_dir)) != 0)
		return rc;
	atomic_store(&app->keys, kr);
	if ((rc = provsig_open(&app->provsig, app->cfg.events.sendgrid_key, app->cfg.events.mailgun_key,
			       app->cfg.events.postmark_auth)) != 0)
		return rc;
	if (provider_ses_configured(&app->cfg.events.ses) &&
	    (rc = snscert_open(&app->snscert, app->cfg.events.ses_ca_file)) != 0)
		return rc;
	if ((rc = policy_load_file(&app->policy, app->cfg.policy, &errs)) != 0) {
		fprintf(stderr, "consentd: the policy file is invalid:\n");
		print_policy_errors(errs);
		policy_errors_free(errs);
		return err_set(rc, "refusing to start with an invalid policy (%s)", app->cfg.policy);
	}
	if ((rc = store_open(&app->store, app->cfg.database)) != 0)
		return rc;
	if (app->cfg.database_pool != 0 &&
	    (rc = store_set_pool_size(app->store, app->cfg.database_pool)) != 0)
		return rc;
	/* Before anything is written: a folder whose keys are not the
	 * deployment's would seal and index data no other instance can read. */
	if ((rc = keycheck_verify(app->store, kr, app->cfg.signing_key, app->cfg.keys_dir, NULL)) != 0)
		return rc;
	if ((rc = writer_open(&app->writer, app->store, app->cfg.signing_key, app->cfg.audit_anchor)) != 0)
		return rc;
	if ((rc = auditwatch_start(&app->watch, app->store, app->cfg.signing_pub, app->cfg.audit_anchor,
				   app->cfg.audit_verify_every)) != 0)
		return rc;
	app->env = (struct service_env){ .cfg = &app->cfg,
					 .store = app->store,
					 .writer = app->writer,
					 .keys = &app->keys,
					 .policy = env_policy,
					 .policy_arg = app };
	instance_name(app->env.instance, sizeof app->env.instance, &app->cfg);
	if ((rc = outbound_start(&app->outbound, &app->env)) != 0)
		return rc;
	if ((rc = read_file(app->cfg.tls_cert, &cert, false)) != 0 ||
	    (rc = read_file(app->cfg.tls_key, &key, true)) != 0)
		goto out;
	struct http_config hc = {
		.address = app->cfg.address,
		.port = app->cfg.port,
		.cert_pem = cert,
		.key_pem = key,
		.threads = app->cfg.threads,
		.cb = { on_headers, on_body, on_complete, on_free },
		.app = app,
	};
	rc = http_start(&app->http, &hc);
	if (rc == 0 && !app->cfg.public_url_given)
		config_default_public_url(&app->cfg, http_port(app->http)); /* --listen with port 0 */
	/* After the public URL is final: the mail carries links under it. */
	if (rc == 0)
		rc = mail_worker_start(&app->mail, &app->env);
out:
	free(cert);
	if (key != NULL) {
		crypto_wipe(key, strlen(key));
		free(key);
	}
	return rc;
}

int app_serve(struct app *app)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	atomic_store(&app->ready, true);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			auth_cache_clear(app->auth_cache);
			app_reload_keys(app);
			app_reload_policy(app);
			continue;
		}
		fprintf(stderr, "consentd: shutting down\n");
		atomic_store(&app->ready, false);
		return 0;
	}
}

void app_close(struct app *app)
{
	/* Answer waiting verifications (through the log), drain the audit queue
	 * (every suspended request gets its reply), then stop the server, then
	 * free the log. */
	auditwatch_stop(app->watch);
	app->watch = NULL;
	mail_worker_stop(app->mail);
	outbound_stop(app->outbound); /* it records through the writer */
	writer_shutdown(app->writer);
	http_stop(app->http);
	outbound_free(app->outbound); /* /metrics reads its stats until http_stop */
	app->outbound = NULL;
	mail_worker_free(app->mail); /* the same */
	app->mail = NULL;
	writer_close(app->writer);
	store_close(app->store);
	keyring_free(atomic_load(&app->keys));
	provsig_free(app->provsig);
	snscert_free(app->snscert);
	policy_unref(app->policy);
	pthread_mutex_destroy(&app->policy_lock);
	auth_cache_free(app->auth_cache);
}

/* Whether the store answers now. An idle instance whose database server is
 * gone (PostgreSQL down, a failover under way) has no failed batch yet to
 * make the writer unhealthy; a load balancer must still take it out. */
bool app_store_reachable(struct app *app)
{
	struct store_conn *c = NULL;
	int64_t seq = 0;
	uint8_t hash[32];
	bool ok = store_conn_get(app->store, &c) == 0 && store_audit_head(c, &seq, hash) == 0;
	store_conn_put(app->store, c);
	return ok;
}
