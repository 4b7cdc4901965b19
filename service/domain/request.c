/*
 * request: data-subject requests: their deadlines (pure functions of the
 * dates) and their life cycle on a struct txn. See request.h for the rules
 * and the state table.
 */
#include "service/domain/request.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/contact.h"
#include "service/domain/link.h"
#include "service/domain/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap(y) ? 29 : days[m - 1];
}

bool request_date_valid(struct request_date d)
{
	return d.y >= 1 && d.y <= 9999 && d.m >= 1 && d.m <= 12 && d.d >= 1 && d.d <= month_days(d.y, d.m);
}

/* The calendar is codec's (the one proleptic Gregorian day count). */
int64_t request_days(struct request_date d)
{
	return days_from_civil(d.y, d.m, d.d);
}

struct request_date request_from_days(int64_t z)
{
	struct request_date r;
	civil_from_days(z, &r.y, &r.m, &r.d);
	return r;
}

int request_weekday(struct request_date d)
{
	/* 1970-01-01 was a Thursday (3 when Monday is 0). */
	int64_t w = (request_days(d) + 3) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

/* The same day n months later, or that month's last day. */
static struct request_date add_months(struct request_date d, int n)
{
	int m0 = d.m - 1 + n;
	struct request_date r = { d.y + m0 / 12, m0 % 12 + 1, d.d };
	if (r.d > month_days(r.y, r.m))
		r.d = month_days(r.y, r.m);
	return r;
}

static struct request_date add_days(struct request_date d, int64_t n)
{
	return request_from_days(request_days(d) + n);
}

/* Saturday and Sunday move to the following Monday. */
static struct request_date next_working_day(struct request_date d)
{
	int w = request_weekday(d);
	return w >= 5 ? add_days(d, 7 - w) : d;
}

int request_due(enum request_jurisdiction j, struct request_date received, bool extended,
		struct request_date *due)
{
	if (!request_date_valid(received))
		return err_set(ERR_INVALID, "not a valid date");
	if (j == REQUEST_GDPR)
		*due = next_working_day(add_months(received, extended ? 3 : 1));
	else
		*due = add_days(received, extended ? 90 : 45);
	return 0;
}

int request_ack_due(enum request_jurisdiction j, struct request_date received, struct request_date *ack)
{
	if (!request_date_valid(received))
		return err_set(ERR_INVALID, "not a valid date");
	if (j != REQUEST_CCPA)
		return err_set(ERR_NOTFOUND, "GDPR sets no separate acknowledgement deadline");
	struct request_date d = received;
	for (int left = 10; left > 0;) {
		d = add_days(d, 1);
		if (request_weekday(d) < 5)
			left--;
	}
	*ack = d;
	return 0;
}

bool request_may_extend(enum request_jurisdiction j, struct request_date received, bool already_extended,
			struct request_date today)
{
	struct request_date first;
	if (already_extended || request_due(j, received, false, &first) != 0 || !request_date_valid(today))
		return false;
	return request_days(today) <= request_days(first);
}

/* ---- the life cycle ---------------------------------------------------- */

static struct request_date today_of(const struct txn *t);

static const char *const state_names[REQUEST_STATE_COUNT] = {
	"received", "verified", "in_progress", "extended", "completed", "denied",
};
static const char *const kind_names[REQUEST_KIND_COUNT] = { "access", "erasure", "objection" };
static const char *const jurisdiction_names[] = { "gdpr", "ccpa" };

const char *request_state_name(enum request_state s)
{
	return (unsigned)s < REQUEST_STATE_COUNT ? state_names[s] : NULL;
}

const char *request_kind_name(enum request_kind k)
{
	return (unsigned)k < REQUEST_KIND_COUNT ? kind_names[k] : NULL;
}

const char *request_jurisdiction_name(enum request_jurisdiction j)
{
	return j == REQUEST_CCPA ? "ccpa" : "gdpr";
}

static int name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; name != NULL && i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int request_state_from_name(const char *name, enum request_state *out)
{
	int i = name_index(state_names, REQUEST_STATE_COUNT, name);
	if (i < 0)
		return err_set(ERR_INVALID, "not a request state");
	*out = (enum request_state)i;
	return 0;
}

int request_kind_from_name(const char *name, enum request_kind *out)
{
	int i = name_index(kind_names, REQUEST_KIND_COUNT, name);
	if (i < 0)
		return err_set(ERR_INVALID, "not a request kind");
	*out = (enum request_kind)i;
	return 0;
}

int request_jurisdiction_from_name(const char *name, enum request_jurisdiction *out)
{
	int i = name_index(jurisdiction_names, 2, name);
	if (i < 0)
		return err_set(ERR_INVALID, "not a jurisdiction");
	*out = i == 1 ? REQUEST_CCPA : REQUEST_GDPR;
	return 0;
}

/* The drawing in request.h, as a table: edges[from] is the set of states
 * (bit per state) a request may move to. */
#define TO(s) (1u << (s))
static const unsigned edges[REQUEST_STATE_COUNT] = {
	[REQUEST_RECEIVED] = TO(REQUEST_VERIFIED) | TO(REQUEST_DENIED) | TO(REQUEST_EXTENDED),
	[REQUEST_VERIFIED] = TO(REQUEST_IN_PROGRESS) | TO(REQUEST_DENIED) | TO(REQUEST_EXTENDED),
	[REQUEST_IN_PROGRESS] = TO(REQUEST_COMPLETED) | TO(REQUEST_DENIED) | TO(REQUEST_EXTENDED),
	[REQUEST_EXTENDED] = TO(REQUEST_COMPLETED) | TO(REQUEST_DENIED),
	[REQUEST_COMPLETED] = 0,
	[REQUEST_DENIED] = 0,
};

bool request_may_move(enum request_state from, enum request_state to)
{
	if ((unsigned)from >= REQUEST_STATE_COUNT || (unsigned)to >= REQUEST_STATE_COUNT)
		return false;
	return (edges[from] & TO(to)) != 0;
}

struct request_date request_date_of_day(int64_t day)
{
	return request_from_days(day);
}

struct request_date request_today(const struct txn *t)
{
	return today_of(t);
}

static struct request_date today_of(const struct txn *t)
{
	int64_t s = t->now_us / 1000000;
	return request_from_days(s >= 0 ? s / 86400 : (s - 86399) / 86400);
}

const char *request_refusal(const struct store_request *r, enum request_state to, struct request_date today)
{
	enum request_state from = REQUEST_STATE_COUNT;
	enum request_jurisdiction j = REQUEST_GDPR;
	if (request_state_from_name(r->state, &from) != 0 || !request_may_move(from, to))
		return "invalid_transition";
	if (to == REQUEST_EXTENDED) {
		if (request_jurisdiction_from_name(r->jurisdiction, &j) != 0)
			return "invalid_transition";
		if (!request_may_extend(j, request_from_days(r->received_day), r->extended, today))
			return "extension_too_late";
	}
	return NULL;
}

static int queue_mail(struct txn *t, const char *kind, const struct store_request *r, const char *lang)
{
	struct store_mail m;
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	memset(&m, 0, sizeof m);
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, m.id);
	snprintf(m.kind, sizeof m.kind, "%s", kind);
	snprintf(m.contact_id, sizeof m.contact_id, "%s", r->contact_id);
	/* The mail names the request in the link column: it carries no link. */
	snprintf(m.link_id, sizeof m.link_id, "%s", r->id);
	snprintf(m.lang, sizeof m.lang, "%s", lang != NULL && strcmp(lang, "zh-CN") == 0 ? "zh-CN" : "en");
	m.created_us = t->now_us;
	return store_mail_put(t->c, &m);
}

int request_open(struct txn *t, const char *contact_id, enum request_kind kind, enum request_jurisdiction j,
		 struct request_date received, const char *origin, enum request_state state,
		 bool needs_approval, const char *lang, struct store_request *out,
		 enum decision_reason *reason)
{
	struct store_contact ct;
	struct request_date due, ack;
	uint8_t raw[LIMIT_ID_RAW_BYTES];
	*reason = REASON_NONE;
	int rc = contact_get_active(t, contact_id, &ct, reason);
	if (rc != 0)
		return rc;
	if (!request_date_valid(received))
		return err_set(ERR_INVALID, "received_at is not a valid date");
	if (request_days(received) > request_days(today_of(t)))
		return err_set(ERR_UNPROCESSABLE, "received_at is in the future");
	if ((rc = request_due(j, received, false, &due)) != 0)
		return rc;
	memset(out, 0, sizeof *out);
	crypto_random(raw, sizeof raw);
	b64url_encode(raw, sizeof raw, out->id);
	snprintf(out->contact_id, sizeof out->contact_id, "%s", ct.id);
	snprintf(out->kind, sizeof out->kind, "%s", request_kind_name(kind));
	snprintf(out->jurisdiction, sizeof out->jurisdiction, "%s", request_jurisdiction_name(j));
	snprintf(out->state, sizeof out->state, "%s", request_state_name(state));
	snprintf(out->origin, sizeof out->origin, "%s", origin);
	out->received_day = request_days(received);
	out->due_day = request_days(due);
	out->ack_day = request_ack_due(j, received, &ack) == 0 ? request_days(ack) : 0;
	out->needs_approval = needs_approval;
	out->created_us = out->updated_us = t->now_us;
	if ((rc = store_request_put(t->c, out)) != 0)
		return rc;
	/* A request answered at once (the page's download, an erasure
	 * without approval) is its own answer: nothing to mail. */
	if (state == REQUEST_COMPLETED)
		return 0;
	return queue_mail(t, "request_received", out, lang);
}

static void step_aad_id(const struct store_request_step *st, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%lld", st->request_id, (long long)st->seq);
}

int request_move(struct txn *t, const char *id, enum request_state to, const char *reason, const char *actor,
		 struct store_request *out, const char **refusal)
{
	struct store_contact ct;
	struct store_request_step st;
	struct request_date due;
	enum request_jurisdiction j;
	uint8_t dek[32];
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	char aad[STORE_ID_CAP + 24];
	json_t *v = NULL;
	*refusal = NULL;
	int rc = store_request_get(t->c, id, out);
	if (rc != 0)
		return rc;
	if ((*refusal = request_refusal(out, to, today_of(t))) != NULL)
		return 0;
	if ((rc = store_contact_get(t->c, out->contact_id, &ct)) != 0)
		return rc;
	/* An erased person's key is gone: no reason could be kept, and
	 * nothing is left to act on (the erasure itself completed it). */
	if (ct.erased) {
		*refusal = "erased";
		return 0;
	}
	memset(&st, 0, sizeof st);
	snprintf(st.request_id, sizeof st.request_id, "%s", out->id);
	st.seq = out->steps + 1;
	snprintf(st.from_state, sizeof st.from_state, "%s", out->state);
	snprintf(st.to_state, sizeof st.to_state, "%s", request_state_name(to));
	snprintf(st.actor, sizeof st.actor, "%s", actor);
	st.at_us = t->now_us;
	step_aad_id(&st, aad, sizeof aad);
	if ((rc = record_unwrap(t->keys, &ct, dek)) != 0)
		return rc;
	v = json_string(reason);
	rc = v == NULL ? err_set(ERR_INVALID, "the reason is not UTF-8")
		       : record_seal(dek, "dsr_step", aad, "reason", v, &sealed, &sealed_len);
	crypto_wipe(dek, sizeof dek);
	json_decref(v);
	if (rc != 0)
		return rc;
	if (sealed_len > sizeof st.reason) {
		free(sealed);
		return err_set(ERR_TOOBIG, "the reason does not fit");
	}
	memcpy(st.reason, sealed, sealed_len);
	st.reason_len = sealed_len;
	free(sealed);

	int64_t prev = out->steps;
	snprintf(out->state, sizeof out->state, "%s", request_state_name(to));
	out->steps = st.seq;
	out->updated_us = t->now_us;
	if (to == REQUEST_EXTENDED) {
		if ((rc = request_jurisdiction_from_name(out->jurisdiction, &j)) != 0 ||
		    (rc = request_due(j, request_from_days(out->received_day), true, &due)) != 0)
			return rc;
		out->extended = true;
		out->due_day = request_days(due);
	}
	/* Approval is a staff step on an erasure the page received: any
	 * move by staff settles it. */
	out->needs_approval = false;
	if ((rc = store_request_update(t->c, out, prev)) != 0 ||
	    (rc = store_request_step_put(t->c, &st)) != 0)
		return rc;
	if (to != REQUEST_COMPLETED)
		return 0;
	if (strcmp(out->kind, "erasure") == 0) {
		if ((rc = link_revoke_all(t, ct.id)) != 0)
			return rc;
		return contact_erase(t, &ct);
	}
	return queue_mail(t, "request_completed", out, NULL);
}

static json_t *day_json(int64_t day)
{
	char s[16];
	struct request_date d = request_from_days(day);
	snprintf(s, sizeof s, "%04d-%02d-%02d", d.y, d.m, d.d);
	return json_string(s);
}

void request_due_text(const struct store_request *r, char out[16])
{
	struct request_date d = request_from_days(r->due_day);
	snprintf(out, 16, "%04d-%02d-%02d", d.y, d.m, d.d);
}

json_t *request_to_json(const struct store_request *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:b, s:o, s:o}", "id", r->id,
			      "contact_id", r->contact_id, "kind", r->kind, "jurisdiction", r->jurisdiction,
			      "state", r->state, "origin", r->origin, "received_at",
			      day_json(r->received_day), "due_at", day_json(r->due_day), "extended",
			      r->extended, "awaiting_approval", r->needs_approval, "created_at",
			      json_time(r->created_us), "updated_at", json_time(r->updated_us));
	if (o != NULL)
		json_object_set_new(o, "acknowledge_by",
				    strcmp(r->jurisdiction, "ccpa") == 0 ? day_json(r->ack_day)
									 : json_null());
	return o;
}

struct steps_walk {
	const uint8_t *dek; /* NULL: the person was erased */
	json_t *arr;
};

static int step_cb(void *arg, const struct store_request_step *st)
{
	struct steps_walk *w = arg;
	json_t *reason = NULL;
	char aad[STORE_ID_CAP + 24];
	if (w->dek != NULL && st->reason_len > 0) {
		step_aad_id(st, aad, sizeof aad);
		int rc = record_open(w->dek, "dsr_step", aad, "reason", st->reason, st->reason_len, &reason);
		if (rc != 0)
			return rc;
	}
	json_array_append_new(w->arr, json_pack("{s:I, s:s, s:s, s:s, s:o, s:o}", "seq", (json_int_t)st->seq,
						"from", st->from_state, "to", st->to_state, "by", st->actor,
						"at", json_time(st->at_us), "reason",
						reason != NULL ? reason : json_null()));
	return 0;
}

int request_get(struct txn *t, const char *id, struct store_request *out)
{
	return store_request_get(t->c, id, out);
}

int request_get_json(struct txn *t, const char *id, bool with_steps, json_t **out)
{
	struct store_request r;
	struct store_contact ct;
	uint8_t dek[32];
	bool have_key = false;
	*out = NULL;
	int rc = store_request_get(t->c, id, &r);
	if (rc != 0)
		return rc;
	json_t *o = request_to_json(&r);
	if (o == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if (!with_steps) {
		*out = o;
		return 0;
	}
	rc = store_contact_get(t->c, r.contact_id, &ct);
	if (rc == 0 && !ct.erased) {
		if ((rc = record_unwrap(t->keys, &ct, dek)) != 0)
			goto fail;
		have_key = true;
	} else if (rc != 0 && rc != ERR_NOTFOUND) {
		goto fail;
	}
	struct steps_walk w = { have_key ? dek : NULL, json_array() };
	rc = store_request_steps_each(t->c, r.id, step_cb, &w);
	json_object_set_new(o, "steps", w.arr);
	if (have_key)
		crypto_wipe(dek, sizeof dek);
	if (rc != 0)
		goto fail;
	*out = o;
	return 0;
fail:
	json_decref(o);
	return rc;
}

static int list_cb(void *arg, const struct store_request *r)
{
	json_t *o = request_to_json(r);
	if (o == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	json_array_append_new(arg, o);
	return 0;
}

int request_list_json(struct txn *t, const char *state, int64_t due_before_day, size_t max, json_t **out,
		      bool *more)
{
	json_t *arr = json_array();
	if (arr == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	int rc = store_requests_each(t->c, state, due_before_day, max, list_cb, arr, more);
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int request_due_counts(struct txn *t, int64_t *overdue, int64_t *due_soon)
{
	int64_t today = request_days(today_of(t));
	return store_requests_due_counts(t->c, today, today + LIMIT_REQUEST_DUE_SOON_DAYS, overdue, due_soon);
}
