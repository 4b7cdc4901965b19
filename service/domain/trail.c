/*
 * trail: auditor reads of the audit trail. See trail.h.
 */
#include "service/domain/trail.h"

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/record.h"
#include "service/domain/release.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct trail_cursor {
	struct store *st;
	struct store_conn *c;
	struct store_audit_cursor *cur;
};

int trail_each(struct txn *t, const struct store_audit_filter *f, store_audit_cb cb, void *ctx)
{
	return store_audit_each(t->c, f, cb, ctx);
}

int trail_cursor_open(struct store *st, const struct store_audit_filter *f, struct trail_cursor **out)
{
	struct trail_cursor *tc = calloc(1, sizeof *tc);
	int rc;
	*out = NULL;
	if (tc == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	tc->st = st;
	if ((rc = store_conn_get(st, &tc->c)) != 0 ||
	    (rc = store_audit_cursor_open(tc->c, f, &tc->cur)) != 0) {
		trail_cursor_close(tc);
		return rc;
	}
	*out = tc;
	return 0;
}

int trail_cursor_next(struct trail_cursor *tc, struct audit_entry *e)
{
	return store_audit_cursor_next(tc->cur, e);
}

void trail_cursor_close(struct trail_cursor *tc)
{
	if (tc == NULL)
		return;
	/* The cursor's statement goes before its connection returns. */
	store_audit_cursor_close(tc->cur);
	if (tc->c != NULL)
		store_conn_put(tc->st, tc->c);
	free(tc);
}

/* ---- entries as lines ---- */

struct trail_lines {
	struct trail_cursor *cur;
	enum trail_format fmt;
	bool started, ended, filtered;
	char reason[AUDIT_REASON_MAX + 1];
	struct audit_entry e;
	size_t len, off; /* the pending line, for trail_lines_read */
	char line[AUDIT_JSON_MAX > AUDIT_CSV_MAX ? AUDIT_JSON_MAX : AUDIT_CSV_MAX];
};

int trail_lines_open(struct store *st, const struct store_audit_filter *f, enum trail_format fmt,
		     const char *reason, struct trail_lines **out)
{
	struct trail_lines *l = calloc(1, sizeof *l);
	int rc;
	*out = NULL;
	if (l == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	l->fmt = fmt;
	if (reason != NULL) {
		if (strlen(reason) >= sizeof l->reason) {
			free(l);
			return err_set(ERR_INVALID, "reason is longer than %d bytes", AUDIT_REASON_MAX);
		}
		memcpy(l->reason, reason, strlen(reason) + 1);
		l->filtered = true;
	}
	if ((rc = trail_cursor_open(st, f, &l->cur)) != 0) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int trail_lines_next(struct trail_lines *l, const char **line, size_t *len)
{
	int n;
	if (!l->started) {
		l->started = true;
		if (l->fmt == TRAIL_CSV) {
			if ((n = audit_csv_header(l->line, sizeof l->line)) < 0)
				return n;
			*line = l->line;
			*len = (size_t)n;
			return 1;
		}
	}
	for (;;) {
		int rc = trail_cursor_next(l->cur, &l->e);
		if (rc <= 0)
			return rc;
		if (l->filtered && strcmp(l->e.reason, l->reason) != 0)
			continue;
		if (l->fmt == TRAIL_CSV) {
			n = audit_entry_format_csv(&l->e, l->line, sizeof l->line);
		} else {
			n = audit_entry_format_json(&l->e, l->line, sizeof l->line - 1);
			if (n >= 0)
				l->line[n++] = '\n';
		}
		if (n < 0)
			return n;
		*line = l->line;
		*len = (size_t)n;
		return 1;
	}
}

ssize_t trail_lines_read(void *lines, char *buf, size_t cap)
{
	struct trail_lines *l = lines;
	size_t out = 0;
	while (out < cap) {
		if (l->off == l->len) {
			const char *p;
			if (l->ended)
				break;
			int rc = trail_lines_next(l, &p, &l->len);
			if (rc < 0) {
				fprintf(stderr, "consentd: audit export cut short: %s\n", err_msg());
				return -1;
			}
			if (rc == 0) {
				l->ended = true;
				l->len = l->off = 0;
				break;
			}
			l->off = 0; /* p is l->line */
		}
		size_t k = l->len - l->off;
		if (k > cap - out)
			k = cap - out;
		memcpy(buf + out, l->line + l->off, k);
		l->off += k;
		out += k;
	}
	return (ssize_t)out;
}

void trail_lines_free(void *lines)
{
	struct trail_lines *l = lines;
	if (l == NULL)
		return;
	trail_cursor_close(l->cur);
	free(l);
}

int trail_head(struct txn *t, int64_t *seq, uint8_t hash[32])
{
	return store_audit_head(t->c, seq, hash);
}

int trail_checkpoint_latest(struct txn *t, struct audit_checkpoint *out)
{
	return store_checkpoint_latest(t->c, out);
}

/* ---- the auditor console's reads ---- */

int trail_stats(struct txn *t, enum store_console_stat which, int64_t since_us, store_console_stat_cb cb,
		void *ctx)
{
	return store_console_stats(t->c, which, since_us, cb, ctx);
}

static int take_one(void *arg, const struct audit_entry *e)
{
	memcpy(arg, e, sizeof *e);
	return 1;
}

int trail_entry(struct txn *t, int64_t seq, struct audit_entry *e, bool *linked)
{
	struct store_audit_filter f;
	uint8_t h[AUDIT_HASH_BYTES], prev[AUDIT_HASH_BYTES];
	*linked = false;
	if (seq < 1)
		return err_set(ERR_NOTFOUND, "there is no entry %lld", (long long)seq);
	memset(e, 0, sizeof *e);
	memset(&f, 0, sizeof f);
	f.after_seq = seq - 1;
	f.limit = 1;
	int rc = store_audit_each(t->c, &f, take_one, e);
	if (rc < 0)
		return rc;
	if (e->seq != seq)
		return err_set(ERR_NOTFOUND, "there is no entry %lld", (long long)seq);
	bool ok = audit_entry_hash(NULL, e, h) == 0 && memcmp(h, e->hash, sizeof h) == 0;
	if (seq == 1)
		memset(prev, 0, sizeof prev);
	else
		ok = ok && store_audit_hash_at(t->c, seq - 1, prev) == 0;
	*linked = ok && memcmp(prev, e->prev_hash, sizeof prev) == 0;
	return 0;
}

int trail_find_contacts(struct txn *t, const char *email, const char *phone, char (*ids)[STORE_ID_CAP],
			size_t cap, size_t *n, bool *more)
{
	uint8_t bidx[32];
	int rc;
	*n = 0;
	*more = false;
	if ((email == NULL) == (phone == NULL) || cap == 0)
		return err_set(ERR_INVALID, "give an email address or a phone number, not both");
	if (email != NULL)
		rc = record_email_hashes(t->keys, email, bidx, NULL);
	else
		rc = record_phone_hashes(t->keys, phone, bidx, NULL);
	if (rc != 0)
		goto out;
	if (email != NULL) {
		rc = store_contact_find_email(t->c, bidx, ids[0]);
		if (rc == 0)
			*n = 1;
		else if (rc == ERR_NOTFOUND)
			rc = 0;
	} else {
		rc = store_console_find_phone(t->c, bidx, ids, cap, n, more);
	}
out:
	/* The index names a person as well as the address does. */
	crypto_wipe(bidx, sizeof bidx);
	return rc;
}

struct reach {
	struct txn *t;
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	store_audit_cb cb;
	void *ctx;
	int64_t scanned;
	bool more;
	int rc;
};

/* The release id an outreach filter entry names in its detail, or "". */
static void release_of(const struct audit_entry *e, char id[STORE_ID_CAP])
{
	id[0] = '\0';
	json_t *d = json_loads(e->detail, 0, NULL);
	const char *rid = json_string_value(json_object_get(d, "release_id"));
	if (rid != NULL && strlen(rid) < STORE_ID_CAP)
		memcpy(id, rid, strlen(rid) + 1);
	json_decref(d);
}

static int reach_add(void *arg, const struct audit_entry *e)
{
	struct reach *x = arg;
	char rid[STORE_ID_CAP];
	if (x->scanned == CONSOLE_CAMPAIGNS_MAX) {
		x->more = true;
		return 1;
	}
	x->scanned++;
	if (strcmp(e->decision, "allow") != 0)
		return 0;
	release_of(e, rid);
	if (rid[0] == '\0')
		return 0;
	int rc = release_find(x->t, rid, x->raw);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc == 0)
		rc = x->cb(x->ctx, e);
	if (rc != 0) {
		x->rc = rc;
		return 1;
	}
	return 0;
}

int trail_reach_each(struct txn *t, const char *contact_id, store_audit_cb cb, void *ctx, bool *more)
{
	struct store_audit_filter f;
	struct reach x = { .t = t, .cb = cb, .ctx = ctx };
	*more = false;
	if (contact_id == NULL ||
	    b64url_decode(contact_id, strlen(contact_id), x.raw, sizeof x.raw) != LIMIT_ID_RAW_BYTES)
		return err_set(ERR_INVALID, "a contact id is 16 bytes in base64url");
	memset(&f, 0, sizeof f);
	f.action = "outreach.filter";
	int rc = store_audit_each(t->c, &f, reach_add, &x);
	*more = x.more;
	if (rc < 0)
		return rc;
	return x.rc;
}

int trail_evidence_checkpoint(struct txn *t, const char *pubkey_path, struct audit_checkpoint *out)
{
	struct audit_pubkey *key = NULL;
	int rc;
	if ((rc = store_checkpoint_latest(t->c, out)) != 0)
		goto out;
	if ((rc = audit_pubkey_load(&key, pubkey_path)) != 0)
		goto out;
	rc = audit_checkpoint_verify(key, out);
out:
	audit_pubkey_free(key);
	return rc;
}

int trail_evidence_checkpoint_on(struct store *st, const char *pubkey_path, struct audit_checkpoint *out)
{
	struct txn t = { 0 };
	int rc = store_conn_get(st, &t.c);
	if (rc != 0)
		return rc;
	rc = trail_evidence_checkpoint(&t, pubkey_path, out);
	store_conn_put(st, t.c);
	return rc;
}
