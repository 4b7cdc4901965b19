/*
 * outbound: the webhook delivery worker (see outbound.h). The only file
 * that includes curl/curl.h for webhooks.
 */
#include "service/outbound.h"

#include "audit/audit.h"
#include "policy/policy.h"
#include "service/config.h"
#include "service/env.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/webhook.h"
#include "service/store/store.h"
#include "service/writer.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define OUTBOUND_POLL_MS 100

struct outbound {
	const struct service_env *env;
	struct worker {
		struct outbound *ob;
		pthread_t thread;
		int slot;
	} workers[LIMIT_WEBHOOK_WORKERS];
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* The endpoint each worker is delivering to ("" when none), under
	 * lock: an endpoint is claimed by one worker at a time. */
	char busy[LIMIT_WEBHOOK_WORKERS][STORE_ID_CAP];
	atomic_uint_fast64_t delivered, retried, dead, gone, refused;
	atomic_int_fast64_t pending, oldest_us;
};

/* One due delivery, copied out of the statement's row. */
struct due {
	struct store_delivery d;
	char *body;
	uint8_t *personal; /* sealed */
};

struct due_list {
	struct due items[LIMIT_WEBHOOK_BATCH];
	int n;
};

struct guard {
	bool allow_private, http, refused;
};

static int due_cb(void *ctx, const struct store_delivery *d)
{
	struct due_list *l = ctx;
	if (l->n >= LIMIT_WEBHOOK_BATCH)
		return 0;
	struct due *it = &l->items[l->n];
	it->d = *d;
	it->d.body = NULL;
	it->d.personal = NULL;
	if ((it->body = strdup(d->body ? d->body : "")) == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	l->n++;
	if (d->personal_len > 0) {
		if ((it->personal = malloc(d->personal_len)) == NULL)
			return err_set(ERR_NOMEM, "out of memory");
		memcpy(it->personal, d->personal, d->personal_len);
		it->d.personal = it->personal;
	}
	it->d.body = it->body;
	return 0;
}

/* Every connection curl opens passes here with the resolved address. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct guard *g = clientp;
	const uint8_t *addr = NULL;
	(void)purpose;
	if (a->family == AF_INET)
		addr = (const uint8_t *)&((const struct sockaddr_in *)&a->addr)->sin_addr;
	else if (a->family == AF_INET6)
		addr = (const uint8_t *)&((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
	bool ok = addr != NULL && (g->http ? g->allow_private && webhook_addr_loopback(a->family, addr)
					   : g->allow_private || webhook_addr_public(a->family, addr));
	if (!ok) {
		g->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* The subscriber's answer is not read: only its status counts. */
static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return size * n;
}

/* What went wrong, in a word the audit trail can hold: never curl's
 * message, which may name a host. */
static const char *outbound_error_class(CURLcode cc, bool refused)
{
	if (refused)
		return "refused_address";
	switch (cc) {
	case CURLE_OK: return "http_status";
	case CURLE_OPERATION_TIMEDOUT: return "timeout";
	case CURLE_COULDNT_RESOLVE_HOST: return "dns";
	case CURLE_COULDNT_CONNECT: return "connect";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE: return "tls";
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING: return "network";
	default: return "other";
	}
}

/* Posts one delivery (body: this endpoint's copy); *status the HTTP status
 * (0 when none), error why not. */
static void post(struct outbound *ob, const struct store_webhook *w, const struct due *it, const char *body,
		 long *status, char *error, size_t cap, const char **class)
{
	struct txn t = { .keys = atomic_load(ob->env->keys), .now_us = now_us() };
	struct guard g = { .allow_private = ob->env->cfg->webhooks.allow_private_targets,
			   .http = strncmp(w->url, "http://", 7) == 0 };
	char sig[WEBHOOK_SIG_CAP], h_id[80], h_ts[64], h_sig[96];
	struct curl_slist *hdrs = NULL;
	CURL *h = NULL;
	int64_t ts = t.now_us / 1000000;
	*status = 0;
	error[0] = '\0';
	*class = "internal";
	if (webhook_check_url(w->url, g.allow_private) != 0) {
		*class = "refused_address";
		snprintf(error, cap, "the target URL is not allowed");
		atomic_fetch_add(&ob->refused, 1);
		goto out;
	}
	if (body == NULL) {
		snprintf(error, cap, "cannot build the request body");
		goto out;
	}
	if (webhook_sign(&t, w, it->d.id, ts, body, sig) != 0) {
		snprintf(error, cap, "cannot sign the request");
		goto out;
	}
	snprintf(h_id, sizeof h_id, "webhook-id: %s", it->d.id);
	snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)ts);
	snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
	struct curl_slist *l = NULL;
	if ((h = curl_easy_init()) == NULL ||
	    (l = curl_slist_append(NULL, "Content-Type: application/json")) == NULL) {
		snprintf(error, cap, "out of memory");
		goto out;
	}
	hdrs = l;
	if ((l = curl_slist_append(hdrs, h_id)) == NULL || (l = curl_slist_append(hdrs, h_ts)) == NULL ||
	    (l = curl_slist_append(hdrs, h_sig)) == NULL ||
	    (l = curl_slist_append(hdrs, "Expect:")) == NULL) {
		snprintf(error, cap, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, w->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, g.http ? "http" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* an environment proxy would bypass the address check */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)LIMIT_WEBHOOK_TIMEOUT_SECONDS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)LIMIT_WEBHOOK_CONNECT_SECONDS);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "consentd-webhooks/1");
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(h);
	*class = outbound_error_class(cc, g.refused);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		if (*status < 200 || *status >= 300)
			snprintf(error, cap, "the endpoint answered %ld", *status);
	} else if (g.refused) {
		snprintf(error, cap, "the target resolved to a loopback, private or reserved address");
		atomic_fetch_add(&ob->refused, 1);
	} else {
		snprintf(error, cap, "%s", curl_easy_strerror(cc));
	}
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	mem_wipe(sig, sizeof sig);
	mem_wipe(h_sig, sizeof h_sig);
}

struct record {
	struct outbound *ob;
	struct store_delivery d;
	long status;
	const char *error, *class;
	enum webhook_outcome outcome;
};

static const char *const outcome_names[] = {
	[WEBHOOK_DELIVERED] = "delivered",
	[WEBHOOK_RETRY] = "retry",
	[WEBHOOK_DEAD] = "dead_letter",
	[WEBHOOK_GONE] = "disabled",
};

/* Records the attempt and fills the job's audit entry (webhooks.delivery)
 * with its outcome: ids, attempt number, status or error class, and when
 * the next attempt is due. Never the body or the target URL. */
static int apply_record(struct store_conn *w, struct writer_job *job)
{
	struct record *r = job->ctx;
	struct txn t = { .c = w, .keys = atomic_load(r->ob->env->keys), .now_us = now_us() };
	int rc =
		webhook_attempt_done(&t, &r->ob->env->cfg->webhooks, &r->d, r->status, r->error, &r->outcome);
	if (rc != 0) {
		snprintf(job->entry.decision, sizeof job->entry.decision, "error");
		snprintf(job->entry.reason, sizeof job->entry.reason, "error");
		return rc;
	}
	bool ok = r->outcome == WEBHOOK_DELIVERED;
	snprintf(job->entry.decision, sizeof job->entry.decision, "%s", ok ? "allow" : "deny");
	snprintf(job->entry.reason, sizeof job->entry.reason, "%s", outcome_names[r->outcome]);
	json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:s}", "delivery_id", r->d.id, "type", r->d.type,
			      "attempt", (json_int_t)r->d.attempts, "status", (json_int_t)r->status, "error",
			      ok ? "" : r->class);
	if (d != NULL && r->outcome == WEBHOOK_RETRY) {
		char next[40];
		format_time_us(r->d.next_us, next, sizeof next);
		json_object_set_new(d, "next_attempt_at", json_string(next));
	}
	char *text = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	if (text == NULL || strlen(text) >= sizeof job->entry.detail) {
		/* The recorded outcome is rolled back with this error: the
		 * entry says so rather than what would have been. */
		free(text);
		snprintf(job->entry.decision, sizeof job->entry.decision, "error");
		snprintf(job->entry.reason, sizeof job->entry.reason, "error");
		return err_set(ERR_NOMEM, "the delivery's audit detail cannot be encoded");
	}
	memcpy(job->entry.detail, text, strlen(text) + 1);
	free(text);
	return 0;
}

static void deliver(struct outbound *ob, struct due *it)
{
	const struct service_env *env = ob->env;
	struct store_conn *c = NULL;
	struct store_webhook w;
	char error[STORE_TEXT_CAP];
	char *body = NULL;
	long status = 0;
	memset(&w, 0, sizeof w);
	if (store_conn_get(env->store, &c) != 0)
		return;
	struct policy *p = env->policy(env->policy_arg);
	struct txn t = { .c = c, .keys = atomic_load(env->keys), .policy = p, .now_us = now_us() };
	int rc = webhook_get(&t, it->d.endpoint_id, &w);
	/* Disabled by a 410 earlier in this pass: its deliveries are failed. */
	bool skip = rc != 0 || w.disabled_us != 0;
	if (!skip && webhook_body(&t, &w, &it->d, &body) != 0)
		body = NULL; /* recorded as a failed attempt below */
	store_conn_put(env->store, c);
	policy_unref(p);
	if (skip)
		goto out;
	const char *class = "internal";
	post(ob, &w, it, body, &status, error, sizeof error, &class);
	struct record r = { .ob = ob, .d = it->d, .status = status, .error = error, .class = class };
	struct writer_job job;
	memset(&job, 0, sizeof job);
	/* Every attempt is audited, with its outcome filled in by apply: at
	 * most one entry per LIMIT_WEBHOOK_MAX_BACKOFF_SECONDS per delivery
	 * once the backoff has grown, which the trail holds easily. */
	audit_entry_fill(&job.entry, "system", "", "webhooks.delivery", it->d.endpoint_id, "", "", "error",
			 "error");
	job.apply = apply_record;
	job.ctx = &r;
	if (writer_run(env->writer, &job) != 0 || job.apply_rc != 0) {
		fprintf(stderr, "consentd: webhooks: cannot record a delivery attempt: %s\n", job.apply_msg);
		goto out;
	}
	switch (r.outcome) {
	case WEBHOOK_DELIVERED: atomic_fetch_add(&ob->delivered, 1); break;
	case WEBHOOK_RETRY: atomic_fetch_add(&ob->retried, 1); break;
	case WEBHOOK_DEAD: atomic_fetch_add(&ob->dead, 1); break;
	case WEBHOOK_GONE: atomic_fetch_add(&ob->gone, 1); break;
	}
out:
	if (body != NULL) {
		mem_wipe(body, strlen(body));
		free(body);
	}
	mem_wipe(&w, sizeof w);
}

/* Claims, for worker slot, the first endpoint in l that no other worker
 * is delivering to; false when every one of them is busy. */
static bool claim(struct outbound *ob, int slot, const struct due_list *l, char mine[STORE_ID_CAP])
{
	bool got = false;
	pthread_mutex_lock(&ob->lock);
	for (int i = 0; !got && i < l->n; i++) {
		const char *ep = l->items[i].d.endpoint_id;
		bool busy = false;
		for (int k = 0; k < LIMIT_WEBHOOK_WORKERS && !busy; k++)
			busy = strcmp(ob->busy[k], ep) == 0;
		if (!busy) {
			snprintf(ob->busy[slot], sizeof ob->busy[slot], "%s", ep);
			snprintf(mine, STORE_ID_CAP, "%s", ep);
			got = true;
		}
	}
	pthread_mutex_unlock(&ob->lock);
	return got;
}

static void release_claim(struct outbound *ob, int slot)
{
	pthread_mutex_lock(&ob->lock);
	ob->busy[slot][0] = '\0';
	pthread_mutex_unlock(&ob->lock);
}

static bool stopping(struct outbound *ob)
{
	pthread_mutex_lock(&ob->lock);
	bool stop = ob->stop;
	pthread_mutex_unlock(&ob->lock);
	return stop;
}

static void list_clear(struct due_list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->items[i].body);
		free(l->items[i].personal);
	}
	memset(l, 0, sizeof *l);
}

/* Reads the due deliveries into l (and, for slot 0, the gauges). */
static int read_due(struct outbound *ob, int slot, struct due_list *l)
{
	struct store_conn *c = NULL;
	int64_t pending = 0, oldest = 0;
	list_clear(l);
	if (store_conn_get(ob->env->store, &c) != 0)
		return ERR_UNAVAILABLE;
	struct txn t = { .c = c, .keys = atomic_load(ob->env->keys), .now_us = now_us() };
	int rc = webhook_queue_stats(&t, &pending, &oldest);
	if (rc == 0 && slot == 0) {
		atomic_store(&ob->pending, pending);
		atomic_store(&ob->oldest_us, oldest);
	}
	if (rc == 0 && pending > 0)
		rc = webhook_due(&t, LIMIT_WEBHOOK_BATCH, due_cb, l);
	store_conn_put(ob->env->store, c);
	return rc;
}

/* The endpoint's claim in the database, through the writer (a write like
 * any other): taken (or, with release, given back) for this instance. */
struct db_claim {
	const char *endpoint_id, *owner;
	int64_t now_us, until_us;
	bool release;
};

static int apply_db_claim(struct store_conn *wc, struct writer_job *job)
{
	struct db_claim *dc = job->ctx;
	if (dc->release)
		return store_webhook_release(wc, dc->endpoint_id, dc->owner);
	return store_webhook_claim(wc, dc->endpoint_id, dc->owner, dc->now_us, dc->until_us);
}

static int db_claim(struct outbound *ob, const char *endpoint_id, bool release, int64_t *until_us)
{
	struct db_claim dc = { endpoint_id, ob->env->instance, now_us(), 0, release };
	struct writer_job job;
	memset(&job, 0, sizeof job);
	dc.until_us = dc.now_us + (int64_t)LIMIT_WEBHOOK_CLAIM_SECONDS * 1000000;
	job.apply = apply_db_claim;
	job.ctx = &dc;
	int rc = writer_run(ob->env->writer, &job);
	if (rc == 0)
		rc = job.apply_rc;
	if (until_us != NULL)
		*until_us = dc.until_us;
	return rc;
}

/* One pass of one worker: claim an endpoint with due deliveries that no
 * other worker holds, here (ob->busy) and on every other instance on the
 * database (db_claim), then send its due deliveries, oldest event first,
 * one at a time. The list is read again after the claim: one read before
 * it may predate the outcome another worker recorded for the same
 * endpoint just before it let go, and would send that delivery twice. */
static void pass(struct outbound *ob, int slot)
{
	struct due_list *l = calloc(1, sizeof *l);
	char mine[STORE_ID_CAP];
	int64_t until_us = 0;
	if (l == NULL || read_due(ob, slot, l) != 0 || l->n == 0 || !claim(ob, slot, l, mine))
		goto out;
	if (db_claim(ob, mine, false, &until_us) != 0) {
		release_claim(ob, slot); /* another instance posts to it now */
		goto out;
	}
	/* No attempt starts that could outlast the claim: the rest waits for
	 * the next pass, under a new claim. */
	if (read_due(ob, slot, l) == 0)
		for (int i = 0; i < l->n && !stopping(ob); i++)
			if (strcmp(l->items[i].d.endpoint_id, mine) == 0) {
				if (now_us() + (int64_t)(LIMIT_WEBHOOK_TIMEOUT_SECONDS + 10) * 1000000 >
				    until_us)
					break;
				deliver(ob, &l->items[i]);
			}
	if (db_claim(ob, mine, true, NULL) != 0)
		fprintf(stderr,
			"consentd: webhooks: cannot release an endpoint's claim; it runs out by itself\n");
	release_claim(ob, slot);
out:
	if (l != NULL)
		list_clear(l);
	free(l);
}

static void *run(void *arg)
{
	struct worker *wk = arg;
	struct outbound *ob = wk->ob;
	for (;;) {
		pass(ob, wk->slot);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += OUTBOUND_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&ob->lock);
		if (!ob->stop)
			pthread_cond_timedwait(&ob->cond, &ob->lock, &ts);
		bool stop = ob->stop;
		pthread_mutex_unlock(&ob->lock);
		if (stop)
			return NULL;
	}
}

static void stop_workers(struct outbound *ob)
{
	pthread_mutex_lock(&ob->lock);
	ob->stop = true;
	pthread_cond_broadcast(&ob->cond);
	pthread_mutex_unlock(&ob->lock);
	for (int i = 0; i < ob->started; i++)
		pthread_join(ob->workers[i].thread, NULL);
	ob->started = 0;
}

int outbound_start(struct outbound **out, const struct service_env *env)
{
	struct outbound *ob = calloc(1, sizeof *ob);
	*out = NULL;
	if (ob == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(ob);
		return err_set(ERR_IO, "cannot initialise libcurl");
	}
	ob->env = env;
	pthread_mutex_init(&ob->lock, NULL);
	pthread_cond_init(&ob->cond, NULL);
	for (int i = 0; i < LIMIT_WEBHOOK_WORKERS; i++) {
		ob->workers[i].ob = ob;
		ob->workers[i].slot = i;
		if (pthread_create(&ob->workers[i].thread, NULL, run, &ob->workers[i]) != 0) {
			outbound_free(ob);
			return err_set(ERR_IO, "cannot start the webhook workers");
		}
		ob->started++;
	}
	*out = ob;
	return 0;
}

void outbound_stop(struct outbound *ob)
{
	if (ob != NULL)
		stop_workers(ob);
}

void outbound_free(struct outbound *ob)
{
	if (ob == NULL)
		return;
	stop_workers(ob);
	pthread_mutex_destroy(&ob->lock);
	pthread_cond_destroy(&ob->cond);
	free(ob);
	curl_global_cleanup();
}

void outbound_stats(struct outbound *ob, struct outbound_stats *out)
{
	memset(out, 0, sizeof *out);
	if (ob == NULL)
		return;
	out->delivered = atomic_load(&ob->delivered);
	out->retried = atomic_load(&ob->retried);
	out->dead = atomic_load(&ob->dead);
	out->gone = atomic_load(&ob->gone);
	out->refused = atomic_load(&ob->refused);
	out->pending = atomic_load(&ob->pending);
	out->oldest_us = atomic_load(&ob->oldest_us);
}
