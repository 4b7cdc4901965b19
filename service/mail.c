/*
 * mail: rendering, .eml and SMTP delivery, and the outbox worker. See
 * mail.h. The only file besides outbound.c that includes curl/curl.h.
 */
#include "service/mail.h"

#include "policy/policy.h"
#include "service/config.h"
#include "service/env.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/store/store.h"
#include "service/writer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct mail_worker {
	const struct service_env *env;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, joined;
	atomic_uint_fast64_t sent, retried, failed, dropped;
};

/* ---- rendering ---- */

/* A growing buffer that refuses, rather than cuts, what does not fit. */
struct out {
	char *s;
	size_t n, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->n + n + 1 > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->s + o->n, s, n);
	o->n += n;
	o->s[o->n] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_b64(struct out *o, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = { b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
			      i + 2 < n ? b64[v & 63] : '=' };
		put(o, q, 4);
	}
}

/* A body part as base64 in lines of 76 characters (RFC 2045): any UTF-8
 * text survives any relay, and no line can be read as the end of DATA. */
static void put_b64_body(struct out *o, const char *text)
{
	size_t n = strlen(text);
	for (size_t i = 0; i < n; i += 57) {
		put_b64(o, (const uint8_t *)text + i, n - i < 57 ? n - i : 57);
		puts_(o, "\r\n");
	}
}

/* A UTF-8 header value as RFC 2047 encoded words, folded onto
 * continuation lines, each word ending on a whole character (a word may
 * not split one, RFC 2047 section 5). 36 bytes make a word of 60
 * characters, so a line stays within 78 with "Subject: " before it. */
static void put_encoded_words(struct out *o, const char *text)
{
	size_t n = strlen(text), i = 0;
	bool first = true;
	while (i < n) {
		size_t take = n - i < 36 ? n - i : 36;
		while (i + take < n && take > 0 && ((uint8_t)text[i + take] & 0xc0) == 0x80)
			take--;
		if (!first)
			puts_(o, "\r\n ");
		puts_(o, "=?UTF-8?B?");
		put_b64(o, (const uint8_t *)text + i, take);
		puts_(o, "?=");
		first = false;
		i += take;
	}
}

static bool is_ascii_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

int mail_render(const struct mailq_message *m, const char *from, int64_t now, char **out, size_t *len)
{
	struct out o = { NULL, 0, 3 * MAIL_BODY_CAP + 4 * MAIL_HTML_CAP / 3 + 4096, false };
	char date[64], boundary[STORE_ID_CAP + 16], line[512];
	*out = NULL;
	*len = 0;
	if ((o.s = malloc(o.cap)) == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	o.s[0] = '\0';
	time_t s = (time_t)(now / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *domain = strchr(from, '@');
	domain = domain != NULL ? domain + 1 : "consentd.invalid";
	/* "=_" never occurs in base64 text, so the boundary cannot occur in
	 * a part. */
	snprintf(boundary, sizeof boundary, "=_consentd_%s", m->id);

	puts_(&o, "From: ");
	if (m->from_name[0] != '\0') {
		/* An organisation's name may hold any character: as encoded
		 * words it cannot break the header. */
		if (is_ascii_printable(m->from_name) && strpbrk(m->from_name, "\"\\()<>,;:@[]") == NULL) {
			snprintf(line, sizeof line, "\"%s\" ", m->from_name);
			puts_(&o, line);
		} else {
			put_encoded_words(&o, m->from_name);
			puts_(&o, "\r\n ");
		}
	}
	snprintf(line, sizeof line, "<%s>\r\nTo: <%s>\r\nSubject: ", from, m->to);
	puts_(&o, line);
	put_encoded_words(&o, m->subject);
	snprintf(line, sizeof line,
		 "\r\nDate: %s\r\n"
		 "Message-ID: <%s@%s>\r\n"
		 "X-Consentd-Link-Id: %s\r\n"
		 "Content-Language: %s\r\n"
		 "Auto-Submitted: auto-generated\r\n"
		 "MIME-Version: 1.0\r\n",
		 date, m->id, domain, m->link_id, m->lang[0] ? m->lang : "en");
	puts_(&o, line);
	if (m->html[0] == '\0') {
		puts_(&o,
		      "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		put_b64_body(&o, m->body);
	} else {
		snprintf(line, sizeof line,
			 "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n--%s\r\n", boundary,
			 boundary);
		puts_(&o, line);
		puts_(&o,
		      "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		put_b64_body(&o, m->body);
		snprintf(line, sizeof line, "--%s\r\n", boundary);
		puts_(&o, line);
		puts_(&o,
		      "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
		put_b64_body(&o, m->html);
		snprintf(line, sizeof line, "--%s--\r\n", boundary);
		puts_(&o, line);
	}
	if (o.full) {
		mem_wipe(o.s, o.cap);
		free(o.s);
		return err_set(ERR_TOOBIG, "the rendered mail does not fit");
	}
	*out = o.s;
	*len = o.n;
	return 0;
}

/* ---- delivery into a folder ---- */

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int mail_deliver_dir(const char *dir, const char *id, const char *msg, size_t len)
{
	char tmp[CONFIG_PATH_CAP + 64], path[CONFIG_PATH_CAP + 64];
	int fd = -1, rc = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return err_set(ERR_IO, "cannot create the mail folder: %s", strerror(errno));
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, id);
	snprintf(path, sizeof path, "%s/%s.eml", dir, id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = err_set(ERR_IO, "cannot create mail %s: %s", id, strerror(errno));
		goto out;
	}
	if (write_all(fd, msg, len) != 0 || fsync(fd) != 0) {
		rc = err_set(ERR_IO, "cannot write mail %s: %s", id, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = err_set(ERR_IO, "cannot write mail %s: %s", id, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = err_set(ERR_IO, "cannot publish mail %s: %s", id, strerror(errno));
		goto out;
	}
	/* The rename is durable once the folder is synced. */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

/* ---- delivery through a relay ---- */

struct upload {
	const char *p;
	size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems < u->left ? size * nitems : u->left;
	memcpy(buf, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

int mail_deliver_smtp(const struct config_mail *cfg, const char *to, const char *msg, size_t len,
		      bool *permanent)
{
	CURL *h = NULL;
	struct curl_slist *rcpt = NULL;
	char from[CONFIG_ORG_CAP + 2], rcpt_to[MAIL_ADDRESS_CAP + 2];
	struct upload u = { msg, len };
	long code = 0;
	int rc = 0;

	*permanent = false;
	snprintf(from, sizeof from, "<%s>", cfg->from);
	snprintf(rcpt_to, sizeof rcpt_to, "<%s>", to);
	if ((h = curl_easy_init()) == NULL || (rcpt = curl_slist_append(NULL, rcpt_to)) == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, cfg->smtp_url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)MAIL_SMTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)MAIL_SMTP_TIMEOUT_S);
	/* "required": no STARTTLS, no mail (curl fails the transfer before
	 * MAIL FROM); "optional" upgrades when the relay offers it. Either
	 * way the relay's certificate and name are verified. */
	curl_easy_setopt(h, CURLOPT_USE_SSL,
			 cfg->starttls == CONFIG_STARTTLS_REQUIRED   ? (long)CURLUSESSL_ALL
			 : cfg->starttls == CONFIG_STARTTLS_OPTIONAL ? (long)CURLUSESSL_TRY
								     : (long)CURLUSESSL_NONE);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK) {
		/* A 5xx answer to the envelope or the data is the relay's final
		 * word on this message; a refused STARTTLS is the relay's state
		 * (or an attacker's), so the message waits for a relay that
		 * speaks TLS. Only curl's own words are logged: the relay's
		 * text may quote the address. */
		*permanent = code >= 500 && code <= 599 && cc != CURLE_USE_SSL_FAILED;
		rc = err_set(ERR_UNAVAILABLE, "the relay did not take the message: %s (reply %ld)",
			     curl_easy_strerror(cc), code);
	}
out:
	curl_slist_free_all(rcpt);
	if (h != NULL)
		curl_easy_cleanup(h);
	return rc;
}

/* ---- the worker ---- */

struct mark {
	char id[STORE_ID_CAP];
	enum store_mail_outcome outcome;
	int64_t when_us;
};

static int apply_mark(struct store_conn *w, struct writer_job *job)
{
	struct mark *mk = job->ctx;
	return store_mail_mark(w, mk->id, mk->outcome, mk->when_us);
}

struct batch {
	struct store_mail rows[MAIL_BATCH];
	size_t n;
};

static int batch_cb(void *ctx, const struct store_mail *m)
{
	struct batch *b = ctx;
	if (b->n < MAIL_BATCH)
		b->rows[b->n++] = *m;
	return 0;
}

static void mark(struct mail_worker *w, const char *id, enum store_mail_outcome outcome, int64_t when_us)
{
	struct mark mk;
	struct writer_job job;
	memset(&job, 0, sizeof job);
	snprintf(mk.id, sizeof mk.id, "%s", id);
	mk.outcome = outcome;
	mk.when_us = when_us;
	job.apply = apply_mark;
	job.ctx = &mk;
	if (writer_run(w->env->writer, &job) != 0 || job.apply_rc != 0)
		fprintf(stderr, "consentd: mail %s: cannot record its delivery; it will be sent again\n", id);
}

int64_t mail_retry_delay_ms(int64_t base_ms, int64_t attempts)
{
	int64_t d = base_ms;
	for (int64_t i = 0; i < attempts && d < MAIL_RETRY_MAX_MS; i++)
		d *= 2;
	return d < MAIL_RETRY_MAX_MS ? d : MAIL_RETRY_MAX_MS;
}

static int deliver(const struct config *cfg, const struct mailq_message *msg, int64_t now, bool *permanent)
{
	const struct config_mail *mc = &cfg->mail;
	char *text = NULL;
	size_t len = 0;
	*permanent = false;
	int rc = mail_render(msg, mc->from[0] ? mc->from : "no-reply@consentd.invalid", now, &text, &len);
	if (rc == 0)
		rc = mc->smtp_url[0] != '\0' ? mail_deliver_smtp(mc, msg->to, text, len, permanent)
					     : mail_deliver_dir(cfg->mail_dir, msg->id, text, len);
	if (text != NULL) {
		mem_wipe(text, len);
		free(text);
	}
	return rc;
}

/* A claim, run as a writer job: the rows it took land in b. The job may
 * run again after a failed batch, so it starts from an empty b. */
struct claim {
	const char *owner;
	int64_t now_us, until_us;
	struct batch *b;
};

static int apply_claim(struct store_conn *wc, struct writer_job *job)
{
	struct claim *cl = job->ctx;
	cl->b->n = 0;
	return store_mail_claim(wc, cl->owner, MAIL_BATCH, cl->now_us, cl->until_us, batch_cb, cl->b);
}

static int apply_release(struct store_conn *wc, struct writer_job *job)
{
	return store_mail_release(wc, job->ctx);
}

/* Claims the due messages for this instance; b->n is 0 when none were
 * taken (another instance holds them, or the claim did not commit). */
static void claim_batch(struct mail_worker *w, struct batch *b, int64_t *until_us)
{
	struct claim cl = { w->env->instance, now_us(), 0, b };
	struct writer_job job;
	memset(&job, 0, sizeof job);
	cl.until_us = cl.now_us + (int64_t)MAIL_CLAIM_LEASE_MS * 1000;
	job.apply = apply_claim;
	job.ctx = &cl;
	if (writer_run(w->env->writer, &job) != 0 || job.apply_rc != 0)
		b->n = 0;
	*until_us = cl.until_us;
}

static void round_once(struct mail_worker *w)
{
	const struct service_env *env = w->env;
	const struct config *cfg = env->cfg;
	struct store_conn *rd = NULL;
	struct batch *b = calloc(1, sizeof *b);
	struct mailq_message *msg = calloc(1, sizeof *msg);
	struct policy *p = NULL;
	int64_t until_us = 0;
	size_t i = 0;
	if (b == NULL || msg == NULL || store_conn_get(env->store, &rd) != 0)
		goto out;
	/* A read first: an empty outbox (the usual case) costs the writer
	 * nothing. Then the claim, which is what decides who sends. */
	if (store_mail_pending(rd, MAIL_BATCH, now_us(), batch_cb, b) != 0 || b->n == 0)
		goto out;
	claim_batch(w, b, &until_us);
	p = env->policy(env->policy_arg);
	const struct mailq_org org = { cfg->org.name, cfg->org.postal_address, cfg->org.privacy_policy_url,
				       cfg->org.contact_email };
	for (i = 0; i < b->n; i++) {
		const struct store_mail *m = &b->rows[i];
		/* A delivery that could outlast the claim is left for the next
		 * round: after the claim ran out another instance may send it. */
		if (now_us() + (int64_t)(MAIL_SMTP_TIMEOUT_S + MAIL_SMTP_CONNECT_TIMEOUT_S + 30) * 1000000 >
		    until_us)
			break;
		const char *drop = NULL;
		bool permanent = false;
		struct txn t = { rd, atomic_load(env->keys), p, now_us() };
		int rc = mailq_compose(&t, m, cfg->public_url, &org, msg, &drop);
		if (rc == 0 && drop == NULL)
			rc = deliver(cfg, msg, t.now_us, &permanent);
		mem_wipe(msg, sizeof *msg);
		if (rc == 0 && drop != NULL) {
			fprintf(stderr, "consentd: mail %s dropped: %s\n", m->id, drop);
			atomic_fetch_add(&w->dropped, 1);
		}
		if (rc == 0) {
			if (drop == NULL)
				atomic_fetch_add(&w->sent, 1);
			mark(w, m->id, STORE_MAIL_SENT, now_us());
			continue;
		}
		fprintf(stderr, "consentd: mail %s not delivered (attempt %lld): %s\n", m->id,
			(long long)m->attempts + 1, err_msg());
		/* A permanent refusal, or MAIL_ATTEMPTS_MAX failures: failed
		 * for good, so it stops taking the relay's time, counted in
		 * /metrics and said in the log. */
		if (permanent || m->attempts + 1 >= MAIL_ATTEMPTS_MAX) {
			fprintf(stderr, "consentd: mail %s failed for good after %lld attempts\n", m->id,
				(long long)m->attempts + 1);
			atomic_fetch_add(&w->failed, 1);
			mark(w, m->id, STORE_MAIL_FAILED, now_us());
			continue;
		}
		atomic_fetch_add(&w->retried, 1);
		mark(w, m->id, STORE_MAIL_RETRY,
		     now_us() + mail_retry_delay_ms(cfg->mail.retry_base_ms, m->attempts) * 1000);
	}
	if (b != NULL && i < b->n) {
		/* Claimed and not tried: free them now rather than when the
		 * claim runs out. */
		struct writer_job job;
		memset(&job, 0, sizeof job);
		job.apply = apply_release;
		job.ctx = (void *)env->instance;
		if (writer_run(env->writer, &job) != 0 || job.apply_rc != 0)
			fprintf(stderr,
				"consentd: mail: cannot release the claims; they run out by themselves\n");
	}
out:
	if (p != NULL)
		policy_unref(p);
	if (rd != NULL)
		store_conn_put(env->store, rd);
	free(msg);
	free(b);
}

static void *worker_main(void *arg)
{
	struct mail_worker *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		pthread_mutex_unlock(&w->lock);
		round_once(w);
		pthread_mutex_lock(&w->lock);
		if (w->stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)MAIL_POLL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int mail_worker_start(struct mail_worker **out, const struct service_env *env)
{
	struct mail_worker *w = calloc(1, sizeof *w);
	*out = NULL;
	if (w == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(w);
		return err_set(ERR_INTERNAL, "cannot initialise libcurl");
	}
	w->env = env;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		curl_global_cleanup();
		free(w);
		return err_set(ERR_INTERNAL, "cannot start the mail worker");
	}
	*out = w;
	return 0;
}

void mail_worker_stats(struct mail_worker *w, struct mail_stats *out)
{
	memset(out, 0, sizeof *out);
	if (w == NULL)
		return;
	out->sent = atomic_load(&w->sent);
	out->retried = atomic_load(&w->retried);
	out->failed = atomic_load(&w->failed);
	out->dropped = atomic_load(&w->dropped);
}

void mail_worker_stop(struct mail_worker *w)
{
	if (w == NULL || w->joined)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->joined = true;
}

void mail_worker_free(struct mail_worker *w)
{
	if (w == NULL)
		return;
	mail_worker_stop(w);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	curl_global_cleanup();
	free(w);
}
