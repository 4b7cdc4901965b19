/*
 * outbound: the webhook delivery worker (see outbound.h). The only file
 * that includes curl/curl.h for webhooks.
 */
#include "service/outbound.h"

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
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
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

/* Posts one delivery (body: this endpoint's copy); *status the HTTP status
 * (0 when none), error why not. */
static void post(struct outbound *ob, const struct store_webhook *w, const struct due *it, const char *body,
		 long *status, char *error, size_t cap)
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
	if (webhook_check_url(w->url, g.allow_private) != 0) {
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
	const char *error;
	enum webhook_outcome outcome;
};

static int apply_record(struct store_conn *w, struct writer_job *job)
{
	struct record *r = job->ctx;
	struct txn t = { .c = w, .keys = atomic_load(r->ob->env->keys), .now_us = now_us() };
	return webhook_attempt_done(&t, &r->ob->env->cfg->webhooks, &r->d, r->status, r->error, &r->outcome);
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
	post(ob, &w, it, body, &status, error, sizeof error);
	struct record r = { .ob = ob, .d = it->d, .status = status, .error = error };
	struct writer_job job;
	memset(&job, 0, sizeof job);
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

/* One pass: the due deliveries, oldest event first. */
static void pass(struct outbound *ob)
{
	const struct service_env *env = ob->env;
	struct store_conn *c = NULL;
	struct due_list *l = calloc(1, sizeof *l);
	int64_t pending = 0, oldest = 0;
	if (l == NULL || store_conn_get(env->store, &c) != 0)
		goto out;
	struct txn t = { .c = c, .keys = atomic_load(env->keys), .now_us = now_us() };
	if (webhook_queue_stats(&t, &pending, &oldest) == 0) {
		atomic_store(&ob->pending, pending);
		atomic_store(&ob->oldest_us, oldest);
	}
	int rc = pending > 0 ? webhook_due(&t, LIMIT_WEBHOOK_BATCH, due_cb, l) : 0;
	store_conn_put(env->store, c);
	for (int i = 0; rc == 0 && i < l->n; i++) {
		pthread_mutex_lock(&ob->lock);
		bool stop = ob->stop;
		pthread_mutex_unlock(&ob->lock);
		if (stop)
			break;
		deliver(ob, &l->items[i]);
	}
out:
	for (int i = 0; l != NULL && i < l->n; i++) {
		free(l->items[i].body);
		free(l->items[i].personal);
	}
	free(l);
}

static void *run(void *arg)
{
	struct outbound *ob = arg;
	for (;;) {
		pass(ob);
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
	if (pthread_create(&ob->thread, NULL, run, ob) != 0) {
		pthread_mutex_destroy(&ob->lock);
		pthread_cond_destroy(&ob->cond);
		free(ob);
		curl_global_cleanup();
		return err_set(ERR_IO, "cannot start the webhook worker");
	}
	*out = ob;
	return 0;
}

void outbound_stop(struct outbound *ob)
{
	if (ob == NULL)
		return;
	pthread_mutex_lock(&ob->lock);
	ob->stop = true;
	pthread_cond_signal(&ob->cond);
	pthread_mutex_unlock(&ob->lock);
	pthread_join(ob->thread, NULL);
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
