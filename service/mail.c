/*
 * mail: .eml delivery and the outbox worker. See mail.h.
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
	bool stop;
};

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

int mail_deliver_dir(const char *dir, const struct mailq_message *m, int64_t now)
{
	char tmp[CONFIG_PATH_CAP + 64], path[CONFIG_PATH_CAP + 64], date[64], subj[512];
	char head[2048];
	int fd = -1, rc = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return err_set(ERR_IO, "cannot create the mail folder: %s", strerror(errno));
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, m->id);
	snprintf(path, sizeof path, "%s/%s.eml", dir, m->id);
	time_t s = (time_t)(now / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* The subject is UTF-8, so it goes on the header line as an RFC 2047
	 * encoded word. */
	size_t sl = strlen(m->subject);
	if (4 * ((sl + 2) / 3) + 16 > sizeof subj)
		return err_set(ERR_TOOBIG, "the mail subject is too long");
	memcpy(subj, "=?UTF-8?B?", 10);
	size_t n = 10;
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < sl; i += 3) {
		uint32_t v = (uint32_t)(uint8_t)m->subject[i] << 16;
		if (i + 1 < sl)
			v |= (uint32_t)(uint8_t)m->subject[i + 1] << 8;
		if (i + 2 < sl)
			v |= (uint8_t)m->subject[i + 2];
		subj[n++] = b64[(v >> 18) & 63];
		subj[n++] = b64[(v >> 12) & 63];
		subj[n++] = i + 1 < sl ? b64[(v >> 6) & 63] : '=';
		subj[n++] = i + 2 < sl ? b64[v & 63] : '=';
	}
	memcpy(subj + n, "?=", 3);
	int hn = snprintf(head, sizeof head,
			  "From: consentd <no-reply@consentd.invalid>\r\n"
			  "To: <%s>\r\n"
			  "Subject: %s\r\n"
			  "Date: %s\r\n"
			  "Message-ID: <%s@consentd.invalid>\r\n"
			  "X-Consentd-Link-Id: %s\r\n"
			  "Auto-Submitted: auto-generated\r\n"
			  "MIME-Version: 1.0\r\n"
			  "Content-Type: text/plain; charset=UTF-8\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n"
			  "\r\n",
			  m->to, subj, date, m->id, m->link_id);
	if (hn < 0 || (size_t)hn >= sizeof head)
		return err_set(ERR_TOOBIG, "the mail header is too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = err_set(ERR_IO, "cannot create mail %s: %s", m->id, strerror(errno));
		goto out;
	}
	if (write_all(fd, head, (size_t)hn) != 0 || write_all(fd, m->body, strlen(m->body)) != 0 ||
	    fsync(fd) != 0) {
		rc = err_set(ERR_IO, "cannot write mail %s: %s", m->id, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = err_set(ERR_IO, "cannot write mail %s: %s", m->id, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = err_set(ERR_IO, "cannot publish mail %s: %s", m->id, strerror(errno));
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

/* ---- the worker ---- */

struct mark {
	char id[STORE_ID_CAP];
	bool sent; /* delivered or dropped: never try it again */
};

static int apply_mark(struct store_conn *w, struct writer_job *job)
{
	struct mark *mk = job->ctx;
	return store_mail_sent(w, mk->id, now_us(), mk->sent);
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

static void mark(struct mail_worker *w, const char *id, bool sent)
{
	struct mark mk;
	struct writer_job job;
	memset(&job, 0, sizeof job);
	snprintf(mk.id, sizeof mk.id, "%s", id);
	mk.sent = sent;
	job.apply = apply_mark;
	job.ctx = &mk;
	if (writer_run(w->env->writer, &job) != 0 || job.apply_rc != 0)
		fprintf(stderr, "consentd: mail %s: cannot record its delivery; it will be sent again\n", id);
}

static void round_once(struct mail_worker *w)
{
	const struct service_env *env = w->env;
	const struct config *cfg = env->cfg;
	struct store_conn *rd = NULL;
	struct batch *b = calloc(1, sizeof *b);
	struct mailq_message *msg = calloc(1, sizeof *msg);
	struct policy *p = NULL;
	if (b == NULL || msg == NULL || store_conn_get(env->store, &rd) != 0)
		goto out;
	if (store_mail_pending(rd, MAIL_BATCH, batch_cb, b) != 0)
		goto out;
	p = env->policy(env->policy_arg);
	const struct mailq_org org = { cfg->org.name, cfg->org.postal_address, cfg->org.privacy_policy_url,
				       cfg->org.contact_email };
	for (size_t i = 0; i < b->n; i++) {
		const struct store_mail *m = &b->rows[i];
		const char *drop = NULL;
		struct txn t = { rd, atomic_load(env->keys), p, now_us() };
		int rc = mailq_compose(&t, m, cfg->public_url, &org, msg, &drop);
		if (rc == 0 && drop == NULL)
			rc = mail_deliver_dir(cfg->mail_dir, msg, t.now_us);
		mem_wipe(msg, sizeof *msg);
		if (rc == 0 && drop != NULL)
			fprintf(stderr, "consentd: mail %s dropped: %s\n", m->id, drop);
		if (rc != 0)
			fprintf(stderr, "consentd: mail %s not delivered (attempt %lld): %s\n", m->id,
				(long long)m->attempts + 1, err_msg());
		/* Given up after MAIL_ATTEMPTS_MAX: marked, so it stops blocking
		 * the queue, and said in the log. */
		bool give_up = rc != 0 && m->attempts + 1 >= MAIL_ATTEMPTS_MAX;
		if (give_up)
			fprintf(stderr, "consentd: mail %s given up after %d attempts\n", m->id,
				MAIL_ATTEMPTS_MAX);
		mark(w, m->id, rc == 0 || give_up);
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
	w->env = env;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		return err_set(ERR_INTERNAL, "cannot start the mail worker");
	}
	*out = w;
	return 0;
}

void mail_worker_stop(struct mail_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
