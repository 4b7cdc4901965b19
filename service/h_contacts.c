/*
 * h_contacts: create, read (by id or by email), update and erase contacts.
 *
 * Reads name a purpose and reveal only the fields the caller's role may see
 * for it; the audit entry lists exactly the fields revealed. Writes are done
 * in the writer's transaction (job.apply), so a write and its entry are
 * committed together or not at all. Each is one call to the contact domain
 * (service/domain/contact.h): this file parses, authorises, audits and
 * renders.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/contact.h"
#include "service/domain/suppression.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void contact_new_free(void *p)
{
	if (p == NULL)
		return;
	contact_new_clear(p);
	free(p);
}

/* ---- create ---- */

static int apply_create(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, wc);
	int rc = contact_new_insert(&t, ctx->state);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "duplicate_email" : "error");
	return rc;
}

int h_contact_create(struct reqctx *ctx)
{
	json_t *body = NULL;
	struct contact_new *c = NULL;
	int rc;

	if (!app_require(ctx, POLICY_ACT_CONTACTS_CREATE, NULL, NULL))
		return 0;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	struct txn t = app_txn(ctx, NULL);
	c = malloc(sizeof *c);
	if (c == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = contact_new_prepare(&t, body, NULL, "api", c)) != 0)
		goto fail;
	json_decref(body);
	body = NULL;

	/* An address erased before stays suppressed (erasure suppressions are
	 * never lifted by staff): the caller is told, so nobody believes the
	 * new record can be contacted. */
	bool erased_before = false;
	struct txn rt = app_txn(ctx, ctx->rd);
	if ((rc = suppression_previously_erased(&rt, &c->ct, &erased_before)) != 0)
		goto fail;
	ctx->state = c; /* freed with the request */
	ctx->state_free = contact_new_free;
	audit_begin(ctx, "contacts.create", c->ct.id, NULL, NULL);
	audit_decide(ctx, true, "created");
	audit_fields(ctx, c->field_names);
	if (erased_before)
		audit_detail(ctx, json_pack("{s:b}", "previously_erased", 1));
	char location[64];
	snprintf(location, sizeof location, "/v1/contacts/%s", c->ct.id);
	http_add_header(ctx->http, "Location", location);
	json_t *answer = json_pack("{s:s, s:o}", "id", c->ct.id, "created_at", json_time(t.now_us));
	if (erased_before && answer != NULL)
		json_object_set_new(answer, "previously_erased", json_true());
	reply_json(ctx, 201, answer);
	ctx->job.apply = apply_create;
	app_commit(ctx);
	return 0;
fail:
	json_decref(body);
	contact_new_free(c);
	return rc;
}

/* ---- read ---- */

static int purpose_param(struct reqctx *ctx, const char **purpose)
{
	*purpose = http_query(ctx->http, "purpose");
	struct policy_purpose_info pi;
	if (*purpose == NULL || !is_name(*purpose))
		return err_set(ERR_INVALID, "name the purpose of this read: ?purpose=NAME");
	if (policy_purpose_get(ctx->policy, *purpose, &pi) != 0)
		return app_reason(ctx, err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", *purpose),
				  REASON_UNKNOWN_PURPOSE);
	return 0;
}

/* Reads contact id for purpose: decides, reveals the visible fields, audits. */
static int read_for_purpose(struct reqctx *ctx, const char *id, const char *purpose, const char *action)
{
	struct store_contact ct;
	struct contact_subject subj;
	struct policy_decision d;
	char names[AUDIT_FIELDS_MAX + 1] = "";
	json_t *fields = NULL;
	int rc;

	struct txn t = app_txn(ctx, ctx->rd);
	audit_begin(ctx, action, id, purpose, NULL);
	rc = id ? contact_get(&t, id, &ct) : ERR_NOTFOUND;
	if (rc != 0 && rc != ERR_NOTFOUND)
		goto fail;
	if ((rc = contact_read_subject(&t, rc == 0 ? &ct : NULL, purpose, &subj)) != 0)
		goto fail;
	policy_decide_read(ctx->policy, ctx->role, purpose, &subj.s, t.now_us / 1000000, &d);
	const char *reason = policy_reason_name(d.reason);
	audit_decide_reason(ctx, d.allowed, decision_reason_of(d.reason));
	if (!d.allowed) {
		atomic_fetch_add(&ctx->app->metrics.denials, 1);
		if (d.reason == POLICY_REASON_UNKNOWN_CONTACT)
			rc = err_set(ERR_NOTFOUND, "no contact with this id");
		else if (d.reason == POLICY_REASON_ERASED)
			rc = err_set(ERR_GONE, "the contact was erased; its personal data no longer exists");
		else
			rc = err_set(ERR_DENIED, "reading this contact for %s is not allowed: %s", purpose,
				     reason);
		return app_reason(ctx, rc, decision_reason_of(d.reason));
	}
	if ((rc = contact_fields_json(&t, &ct, d.visible_fields, &fields, names, sizeof names)) != 0)
		goto fail;
	/* The record's plaintext attributes follow the field policy too: the
	 * caller learns only the collection purposes its role may itself use
	 * (not, say, that a marketing contact was also collected for care),
	 * and source and owner only where the role's fields list names them. */
	json_t *purposes = json_array();
	for (size_t i = 0; i < subj.s.n_collected_for; i++)
		if (policy_role_may_purpose(ctx->policy, ctx->role, subj.s.collected_for[i]))
			json_array_append_new(purposes, json_string(subj.s.collected_for[i]));
	unsigned meta = policy_role_metadata(ctx->policy, ctx->role, purpose);
	json_t *reply =
		json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", ct.id, "status", "active", "purpose",
			  purpose, "collected_for", purposes, "created_at", json_time(ct.created_us),
			  "updated_at", json_time(ct.updated_us), "fields", fields);
	if (reply != NULL && (meta & POLICY_META_SOURCE))
		json_object_set_new(reply, "source", json_string(ct.source));
	if (reply != NULL && (meta & POLICY_META_OWNER))
		json_object_set_new(reply, "owner", json_string(ct.owner));
	/* Revealed labels are listed with the fields; a list that cannot be
	 * recorded whole is not revealed at all. */
	for (unsigned bit = POLICY_META_SOURCE; bit <= POLICY_META_OWNER; bit <<= 1) {
		size_t n = strlen(names);
		int k = (meta & bit) ? snprintf(names + n, sizeof names - n, "%s%s", n ? "," : "",
						bit == POLICY_META_SOURCE ? "source" : "owner")
				     : 0;
		if (k < 0 || (size_t)k >= sizeof names - n) {
			json_decref(reply);
			rc = err_set(ERR_TOOBIG, "the revealed field names do not fit the audit entry");
			goto fail;
		}
	}
	audit_fields(ctx, names);
	reply_json(ctx, 200, reply);
	app_commit(ctx);
	return 0;
fail:
	/* Could not decide or decrypt: reveal nothing, and audit the failure. */
	audit_decide(ctx, false, "error");
	snprintf(ctx->job.entry.decision, sizeof ctx->job.entry.decision, "error");
	return rc;
}

int h_contact_get(struct reqctx *ctx)
{
	const char *purpose;
	int rc = purpose_param(ctx, &purpose);
	if (rc != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_READ, ctx->param[0], purpose))
		return 0;
	return read_for_purpose(ctx, ctx->param[0], purpose, "contacts.read");
}

int h_contact_lookup(struct reqctx *ctx)
{
	const char *purpose, *email = http_query(ctx->http, "email");
	char id[STORE_ID_CAP];
	int rc;
	if (email == NULL || strlen(email) > 254)
		return err_set(ERR_INVALID, "look up by ?email=ADDRESS&purpose=NAME");
	if ((rc = purpose_param(ctx, &purpose)) != 0)
		return rc;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_READ, NULL, purpose))
		return 0;
	struct txn t = app_txn(ctx, ctx->rd);
	rc = contact_find_email(&t, email, id);
	if (rc != 0 && rc != ERR_NOTFOUND)
		return rc;
	return read_for_purpose(ctx, rc == 0 ? id : NULL, purpose, "contacts.lookup");
}

/* ---- update ---- */

/* Records the old and new collected_for in the entry; refuses the change
 * when they do not fit it whole. */
static int record_purposes(void *arg, const char *old_purposes, const char *new_purposes)
{
	struct reqctx *ctx = arg;
	audit_detail(ctx, json_pack("{s:s, s:s}", "collected_for_old", old_purposes, "collected_for_new",
				    new_purposes));
	if (ctx->job.entry.detail[0] == '\0')
		return err_set(ERR_TOOBIG, "collected_for is too long to record in the audit trail");
	return 0;
}

/* A validated patch, applied on the commit thread. */
struct contact_patch {
	json_t *body;
	int64_t now;
};

static void contact_patch_free(void *p)
{
	struct contact_patch *w = p;
	if (w == NULL)
		return;
	json_decref(w->body);
	free(w);
}

static int apply_update(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct contact_patch *w = ctx->state;
	struct txn t = app_txn(ctx, wc);
	enum decision_reason reason = REASON_NONE;
	t.now_us = w->now;
	int rc = contact_update(&t, ctx->param[0], w->body, ctx->role, record_purposes, ctx, &reason);
	if (rc != 0) {
		if (rc == ERR_DENIED)
			atomic_fetch_add(&ctx->app->metrics.denials, 1);
		audit_decide_reason(ctx, false, reason);
	}
	return rc;
}

int h_contact_update(struct reqctx *ctx)
{
	json_t *body;
	int rc;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_UPDATE, ctx->param[0], NULL))
		return 0;
	if ((rc = app_body(ctx, &body)) != 0)
		return rc;
	if ((rc = contact_validate(ctx->policy, body, true)) != 0) {
		json_decref(body);
		return rc;
	}
	struct contact_patch *w = calloc(1, sizeof *w);
	if (w == NULL) {
		json_decref(body);
		return err_set(ERR_NOMEM, "out of memory");
	}
	w->body = body;
	w->now = now_us();
	ctx->state = w;
	ctx->state_free = contact_patch_free;
	audit_begin(ctx, "contacts.update", ctx->param[0], NULL, NULL);
	audit_decide(ctx, true, "updated");
	char names[AUDIT_FIELDS_MAX + 1] = "";
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach (body, key, v) {
		int k = snprintf(names + n, sizeof names - n, "%s%s", n ? "," : "", key);
		if (k > 0 && (size_t)k < sizeof names - n)
			n += (size_t)k;
	}
	audit_fields(ctx, names);
	reply_json(ctx, 200, json_pack("{s:s, s:o}", "id", ctx->param[0], "updated_at", json_time(w->now)));
	ctx->job.apply = apply_update;
	app_commit(ctx);
	return 0;
}

/* ---- erase ---- */

static int apply_erase(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct txn t = app_txn(ctx, wc);
	struct store_contact ct;
	int rc = app_active_contact(ctx, &t, ctx->param[0], &ct);
	if (rc != 0)
		return rc;
	return contact_erase(&t, &ct);
}

int h_contact_erase(struct reqctx *ctx)
{
	if (!app_require(ctx, POLICY_ACT_CONTACTS_ERASE, ctx->param[0], NULL))
		return 0;
	audit_begin(ctx, "contacts.erase", ctx->param[0], NULL, NULL);
	audit_decide(ctx, true, "erased");
	reply_json(ctx, 200,
		   json_pack("{s:s, s:s, s:o}", "id", ctx->param[0], "status", "erased", "erased_at",
			     json_time(now_us())));
	ctx->job.apply = apply_erase;
	/* Also when the contact was erased before: a retried erasure (after a
	 * 503) is confirmed only once no older copy is left in the WAL. */
	ctx->job.purge_wal = true;
	app_commit(ctx);
	return 0;
}

const struct route contact_routes[] = {
	{ "POST", "/v1/contacts", h_contact_create, NULL, false, 0, "contacts.create" },
	{ "GET", "/v1/contacts", h_contact_lookup, NULL, false, 0, "contacts.lookup" },
	{ "GET", "/v1/contacts/{id}", h_contact_get, NULL, false, 0, "contacts.read" },
	{ "PATCH", "/v1/contacts/{id}", h_contact_update, NULL, false, 0, "contacts.update" },
	{ "DELETE", "/v1/contacts/{id}", h_contact_erase, NULL, false, 0, "contacts.erase" },
	{ 0 },
};
