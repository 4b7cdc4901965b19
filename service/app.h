/*
 * app: the running service: shared state, routing, authentication, and the
 * one path every audited request takes to its reply. Implemented in app.c
 * (lifecycle, dispatch), auth.c (authentication), reply.c (replies, the
 * commit, audit helpers) and problem.c (the error-to-status table).
 *
 * A handler (service/h_*.c) does its reads on ctx->rd, decides, prepares its
 * reply with reply_json()/reply_problem() WITHOUT sending it, fills
 * ctx->job.entry, and calls app_commit(). The reply leaves only after the
 * audit entry (and the job's write, if any) is durable; if the commit fails
 * the prepared reply is dropped and the client gets 503. Requests that touch
 * no record and no decision (health, validation errors) call app_send().
 *
 *   on_complete ─> route ─> authenticate ─> handler ─┬─> app_send()   (no audit)
 *                                                    └─> app_commit() ─> [commit thread]
 *                                                          ─> done: reply or 503 ─> resume
 *
 * Ownership: the reqctx owns its prepared reply, its policy reference and
 * its reader connection; all are released in on_free.
 */
#ifndef CONSENTD_APP_H
#define CONSENTD_APP_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/writer.h"
#include "policy/policy.h"
#include "service/config.h"
#include "service/domain/reason.h"
#include "service/env.h"
#include "service/domain/txn.h"
#include "service/http.h"
#include "service/problem.h"
#include "service/store/store.h"

struct keyring;
struct route;
struct reqctx;
struct auth_cache;
struct auditwatch;
struct provsig;
struct snscert;
struct outbound;

struct app_metrics {
	atomic_uint_fast64_t requests, status_2xx, status_4xx, status_5xx, auth_failures, denials,
		audit_unavailable, checks, filter_entries;
};

struct app {
	struct config cfg;
	struct store *store;
	/* The keyring, for the whole run. It picks up new master key versions
	 * in place (after `keys rotate`): by itself when a data key needs one,
	 * and on SIGHUP (keyring_refresh). */
	struct keyring *_Atomic keys;
	struct writer *writer;
	struct auditwatch *watch; /* scheduled and requested verification */
	struct mail_worker *mail; /* sends the queued mail (service/mail.c) */
	struct http_server *http;
	pthread_mutex_t policy_lock;
	struct policy *policy; /* live policy; swap under policy_lock */
	struct app_metrics metrics;
	struct auth_cache *auth_cache; /* principals from the database, by token hash */
	struct provsig *provsig;       /* inbound providers' keys (events in consentd.conf) */
	struct outbound *outbound;     /* the webhook delivery workers (outbound.c) */
	struct snscert *snscert;       /* SNS certificates and confirmations, when SES is configured */
	struct service_env env;	       /* what the workers above borrow (env.h) */
	int64_t started_us;
	atomic_bool ready;
};

/* A stream handler consumes a request body chunk by chunk (bulk endpoints). */
struct stream_ops {
	int (*begin)(struct reqctx *ctx);
	int (*chunk)(struct reqctx *ctx, const char *data, size_t len);
	int (*finish)(struct reqctx *ctx); /* like a handler: 0 or an error code */
	void (*free)(void *state);
};

struct reqctx {
	struct app *app;
	struct http_request *http;
	struct policy *policy; /* a reference for this request */
	const struct route *route;
	char param[2][128]; /* path parameters, in order */
	bool authenticated;
	char actor[STORE_TEXT_CAP];
	char role[STORE_NAME_CAP];
	struct store_conn *rd; /* reader connection, from the pool */

	/* the prepared reply */
	int status;
	char *body;
	size_t body_len;
	const char *content_type;
	bool replied; /* app_send or app_commit already happened */
	/* The machine-readable reason of the problem for the code a handler
	 * returns (set with app_reason; REASON_NONE for none). */
	enum decision_reason reason;
	/* streamed reply (sent after the commit, instead of body) */
	http_reader stream_read;
	void *stream_ctx;
	void (*stream_free)(void *);

	bool audit_begun;
	char audit_overflow[160]; /* why a value did not fit the entry ("" when all did) */
	struct writer_job job;	  /* its entry is not zeroed up front: audit_begin fills it */

	/* a handler's own state, freed with the request */
	void *state;
	void (*state_free)(void *);

	/* bulk request state */
	const struct stream_ops *stream;
	void *stream_state;
	int stream_rc;
	char stream_begin_msg[256]; /* err_msg() when begin failed, kept for finish */
	char stream_msg[256];	    /* err_msg() when a chunk failed, kept for finish */
};

/* Lifecycle. */
int app_open(struct app *app, const char *dir, const char *listen_override);
int app_serve(struct app *app); /* until SIGTERM/SIGINT; SIGHUP reloads */
void app_close(struct app *app);
/* Reloads the keys (new master key versions after `keys rotate`). */
int app_reload_keys(struct app *app);
/* Reloads the policy; an invalid file is refused and the old one stays. */
int app_reload_policy(struct app *app);

/* The live policy with a new reference (drop it with policy_unref). */
struct policy *app_policy(struct app *app);

/* Preparing a reply (nothing is sent yet). */
void reply_json(struct reqctx *ctx, int status, json_t *body); /* steals body */
void reply_text(struct reqctx *ctx, int status, const char *content_type, char *body, size_t len);
/* Frees a prepared reply that was not sent (a streamed one too). */
void reply_drop(struct reqctx *ctx);
/* A problem+json body for an error code; the message set with err_set() is
 * the detail. `reason`, when not NULL, is added as a machine-readable member. */
void reply_problem(struct reqctx *ctx, int code, const char *reason);
void reply_problem_status(struct reqctx *ctx, int status, const char *type, const char *title,
			  const char *detail, const char *reason);

/* Failing. A handler returns an error code; the dispatcher (app.c) calls
 * app_fail, the one place a code becomes a problem reply: the status, type
 * and title from the table in problem.c, the detail from err_set() when it
 * was set for this code, and the reason given with app_reason(). The reply
 * is committed when the handler began an audit entry (the refusal is on the
 * record) and sent at once otherwise. */
int app_reason(struct reqctx *ctx, int code, enum decision_reason reason); /* returns code */
void app_fail(struct reqctx *ctx, int code);
/* app_fail for work finished on another thread (after app_defer): renders
 * the problem for code (none when 0) and calls app_commit_deferred. */
void app_fail_deferred(struct reqctx *ctx, int code);

/* Sending. */
void app_send(struct reqctx *ctx);
/* Submits ctx->job (the entry plus optional apply) and replies after the
 * commit; on commit failure replies 503 instead of the prepared reply. If
 * the job's apply failed, the reply is a problem for its code. */
void app_commit(struct reqctx *ctx);
/* For work that finishes on another thread: gives back ctx->rd and suspends
 * the request (call on the HTTP thread, from the handler). That thread then
 * prepares the reply and calls app_commit_deferred, exactly once. */
void app_defer(struct reqctx *ctx);
void app_commit_deferred(struct reqctx *ctx);

/* Audit entry helpers: fills actor/role/request/client from ctx. */
void audit_begin(struct reqctx *ctx, const char *action, const char *record_id, const char *purpose,
		 const char *channel);
void audit_decide(struct reqctx *ctx, bool allowed, const char *reason);
/* The same for a reason of the API's vocabulary (service/domain/reason.h). */
void audit_decide_reason(struct reqctx *ctx, bool allowed, enum decision_reason reason);
void audit_detail(struct reqctx *ctx, json_t *detail); /* steals detail */
void audit_fields(struct reqctx *ctx, const char *comma_list);

/* The domain layer's handle for this request on connection c (the
 * writer's, in a job's apply; ctx->rd for reads; NULL when the domain call
 * touches no store): the keys, the request's policy, and now. */
struct txn app_txn(struct reqctx *ctx, struct store_conn *c);

/* For a job's apply: loads contact id on t; an unknown or erased contact is
 * audited as a denial (unknown_contact, erased) and returned as
 * ERR_NOTFOUND or ERR_GONE. */
int app_active_contact(struct reqctx *ctx, struct txn *t, const char *id, struct store_contact *out);

/* Authorisation against the live policy; on refusal prepares 403, audits
 * the denial and commits it, and returns false. */
bool app_require(struct reqctx *ctx, enum policy_action act, const char *record_id, const char *purpose);
/* The same, but the refusal's audit entry names logged_purpose even when
 * the check is not about a purpose (e.g. consents.write for /consents/P). */
bool app_require_logged(struct reqctx *ctx, enum policy_action act, const char *record_id,
			const char *purpose, const char *logged_purpose);

/* The common start of a bulk route's finish: answers, and returns true, when
 * the upload never properly began: no state (begin ran out of memory), the
 * role was refused at begin (audited like app_require), or begin failed with
 * setup_rc (answered with begin's own message and the given reason). */
bool app_stream_refused(struct reqctx *ctx, const void *state, bool role_denied, enum policy_action act,
			const char *purpose, int setup_rc, const char *reason);

/* Request bodies: parses the buffered body as one JSON object with depth and
 * size bounds into *out; ERR_TOOBIG, ERR_UNSUPPORTED or ERR_INVALID (with
 * the message set) otherwise. */
int app_body(struct reqctx *ctx, json_t **out);

/* Handlers: service/h_*.c. */
int h_health(struct reqctx *ctx);
int h_ready(struct reqctx *ctx);
int h_metrics(struct reqctx *ctx);
int h_contact_create(struct reqctx *ctx);
int h_contact_get(struct reqctx *ctx);
int h_contact_lookup(struct reqctx *ctx);
int h_contact_update(struct reqctx *ctx);
int h_contact_erase(struct reqctx *ctx);
int h_consent_put(struct reqctx *ctx);
int h_consents_get(struct reqctx *ctx);
int h_consent_check(struct reqctx *ctx);

/* Whether the store answers a read now (for /readyz): false while the
 * database server is unreachable, even before any write has failed. */
bool app_store_reachable(struct app *app);

#endif
