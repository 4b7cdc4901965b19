/*
 * h_contacts: create, read (by id or by email), update and erase contacts.
 *
 * Reads name a purpose and reveal only the fields the caller's role may see
 * for it; the audit entry lists exactly the fields revealed. Writes are done
 * in the audit log's transaction (job.apply), so a write and its entry are
 * committed together or not at all.
 */
#include "service/app.h"

#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/contact.h"
#include "service/crypto/fieldcrypt.h"
#include "service/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A write prepared on the request thread and applied on the commit thread. */
struct contact_write {
	struct store_contact ct;
	bool has_email, has_phone, index_changed;
	uint8_t email_bidx[32], phone_bidx[32];
	json_t *body; /* validated request body (patch: applied in apply) */
	int64_t now;
};

static void contact_write_free(void *p)
{
	struct contact_write *w = p;
	if (w == NULL)
		return;
	json_decref(w->body);
	crypto_wipe(w, sizeof *w);
	free(w);
}

/* Seals and stores every declared field of body for contact id. */
static int put_fields(struct store_conn *wc, const struct policy *p, const uint8_t dek[32],
		      const char *id, json_t *body)
{
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		struct policy_field_info f;
		if (policy_field_get(p, key, &f) != 0)
			continue; /* collected_for, source, owner */
		if (json_is_null(v)) {
			int rc = store_field_delete(wc, id, key);
			if (rc != 0)
				return rc;
			continue;
		}
		uint8_t *sealed = NULL;
		size_t len = 0;
		int rc = contact_seal(dek, "contact", id, key, v, &sealed, &len);
		if (rc == 0)
			rc = store_field_put(wc, id, key, sealed, len);
		free(sealed);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int hashes_for(const struct keyring *kr, json_t *body, struct contact_write *w,
		      uint8_t email_shash[32], uint8_t phone_shash[32])
{
	json_t *email = json_object_get(body, "email"), *phone = json_object_get(body, "phone");
	int rc = 0;
	if (json_is_string(email)) {
		w->has_email = true;
		w->ct.has_email_shash = true;
		rc = contact_email_hashes(kr, json_string_value(email), w->email_bidx, email_shash);
	}
	if (rc == 0 && json_is_string(phone)) {
		w->has_phone = true;
		w->ct.has_phone_shash = true;
		rc = contact_phone_hashes(kr, json_string_value(phone), w->phone_bidx, phone_shash);
	}
	return rc;
}

/* ---- create ---- */

static int apply_create(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct contact_write *w = ctx->state;
	uint8_t dek[32];
	int rc = store_contact_insert(wc, &w->ct, w->has_email ? w->email_bidx : NULL,
				      w->has_phone ? w->phone_bidx : NULL);
	if (rc == 0)
		rc = fieldcrypt_dek_unwrap(ctx->app->keys, w->ct.id, w->ct.key_version, w->ct.wrapped_key,
					   w->ct.wrapped_len, dek);
	if (rc == 0)
		rc = put_fields(wc, ctx->policy, dek, w->ct.id, w->body);
	crypto_wipe(dek, sizeof dek);
	if (rc != 0)
		audit_decide(ctx, false, rc == ERR_CONFLICT ? "duplicate_email" : "error");
	return rc;
}

void h_contact_create(struct reqctx *ctx)
{
	json_t *body = NULL;
	struct contact_write *w = NULL;
	uint8_t dek[32];
	uint8_t id_raw[16];
	int rc;

	if (!app_require(ctx, POLICY_ACT_CONTACTS_CREATE, NULL, NULL))
		return;
	if ((body = app_json_body(ctx)) == NULL)
		return;
	if ((rc = contact_validate(ctx->policy, body, false)) != 0)
		goto fail;
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto fail;
	}
	w->now = now_us();
	crypto_random(id_raw, sizeof id_raw);
	b64url_encode(id_raw, sizeof id_raw, w->ct.id);
	w->ct.created_us = w->ct.updated_us = w->now;
	if ((rc = contact_purposes_join(json_object_get(body, "collected_for"), w->ct.collected_for,
					sizeof w->ct.collected_for)) != 0)
		goto fail;
	snprintf(w->ct.source, sizeof w->ct.source, "%s",
		 json_string_value(json_object_get(body, "source")) ?: "api");
	snprintf(w->ct.owner, sizeof w->ct.owner, "%s",
		 json_string_value(json_object_get(body, "owner")) ?: "");
	if ((rc = hashes_for(ctx->app->keys, body, w, w->ct.email_shash, w->ct.phone_shash)) != 0)
		goto fail;
	if ((rc = fieldcrypt_dek_new(dek)) != 0 ||
	    (rc = fieldcrypt_dek_wrap(ctx->app->keys, w->ct.id, dek, w->ct.wrapped_key,
				      &w->ct.key_version)) != 0)
		goto fail;
	crypto_wipe(dek, sizeof dek);
	w->ct.wrapped_len = FC_WRAPPED_DEK_BYTES;
	w->body = body;
	body = NULL;

	ctx->state = w; /* freed with the request */
	ctx->state_free = contact_write_free;
	audit_begin(ctx, "contacts.create", w->ct.id, NULL, NULL);
	audit_decide(ctx, true, "created");
	{
		char names[AUDIT_FIELDS_MAX + 1] = "";
		const char *key;
		json_t *v;
		size_t n = 0;
		json_object_foreach(w->body, key, v) {
			struct policy_field_info f;
			if (policy_field_get(ctx->policy, key, &f) == 0) {
				int k = snprintf(names + n, sizeof names - n, "%s%s", n ? "," : "", key);
				if (k > 0 && (size_t)k < sizeof names - n)
					n += (size_t)k;
			}
		}
		audit_fields(ctx, names);
	}
	char location[64];
	snprintf(location, sizeof location, "/v1/contacts/%s", w->ct.id);
	http_add_header(ctx->http, "Location", location);
	reply_json(ctx, 201, json_pack("{s:s, s:o}", "id", w->ct.id, "created_at", json_time(w->now)));
	ctx->job.apply = apply_create;
	app_commit(ctx);
	return;
fail:
	crypto_wipe(dek, sizeof dek);
	json_decref(body);
	contact_write_free(w);
	reply_problem(ctx, rc, NULL);
	app_send(ctx);
}

/* ---- read ---- */

static bool purpose_param(struct reqctx *ctx, const char **purpose)
{
	*purpose = http_query(ctx->http, "purpose");
	struct policy_purpose_info pi;
	if (*purpose == NULL || !is_name(*purpose)) {
		err_set(ERR_INVALID, "name the purpose of this read: ?purpose=NAME");
		reply_problem(ctx, ERR_INVALID, NULL);
		app_send(ctx);
		return false;
	}
	if (policy_purpose_get(ctx->policy, *purpose, &pi) != 0) {
		err_set(ERR_UNPROCESSABLE, "unknown purpose \"%s\"", *purpose);
		reply_problem(ctx, ERR_UNPROCESSABLE, "unknown_purpose");
		app_send(ctx);
		return false;
	}
	return true;
}

/* Reads contact id for purpose: decides, reveals the visible fields, audits. */
static void read_for_purpose(struct reqctx *ctx, const char *id, const char *purpose, const char *action)
{
	struct store_contact ct;
	struct contact_subject subj;
	struct policy_decision d;
	char names[AUDIT_FIELDS_MAX + 1] = "";
	json_t *fields = NULL;
	int rc;

	audit_begin(ctx, action, id, purpose, NULL);
	rc = id ? store_contact_get(ctx->rd, id, &ct) : ERR_NOTFOUND;
	if (rc != 0 && rc != ERR_NOTFOUND)
		goto fail;
	if ((rc = contact_read_subject(ctx->rd, rc == 0 ? &ct : NULL, purpose, now_us() / 1000000,
				       &subj)) != 0)
		goto fail;
	policy_decide_read(ctx->policy, ctx->role, purpose, &subj.s, now_us() / 1000000, &d);
	const char *reason = policy_reason_name(d.reason);
	audit_decide(ctx, d.allowed, reason);
	if (!d.allowed) {
		atomic_fetch_add(&ctx->app->metrics.denials, 1);
		if (d.reason == POLICY_REASON_UNKNOWN_CONTACT) {
			err_set(ERR_NOTFOUND, "no contact with this id");
			reply_problem(ctx, ERR_NOTFOUND, reason);
		} else if (d.reason == POLICY_REASON_ERASED) {
			err_set(ERR_GONE, "the contact was erased; its personal data no longer exists");
			reply_problem(ctx, ERR_GONE, reason);
		} else {
			err_set(ERR_DENIED, "reading this contact for %s is not allowed: %s", purpose, reason);
			reply_problem(ctx, ERR_DENIED, reason);
		}
		app_commit(ctx);
		return;
	}
	if ((rc = contact_fields_json(ctx->rd, ctx->app->keys, ctx->policy, &ct, d.visible_fields,
				      &fields, names, sizeof names)) != 0)
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
	json_t *reply = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", ct.id, "status", "active",
				  "purpose", purpose, "collected_for", purposes, "created_at",
				  json_time(ct.created_us), "updated_at", json_time(ct.updated_us), "fields",
				  fields);
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
	return;
fail:
	/* Could not decide or decrypt: reveal nothing, and audit the failure. */
	audit_decide(ctx, false, "error");
	snprintf(ctx->job.entry.decision, sizeof ctx->job.entry.decision, "error");
	reply_problem(ctx, rc, NULL);
	app_commit(ctx);
}

void h_contact_get(struct reqctx *ctx)
{
	const char *purpose;
	if (!purpose_param(ctx, &purpose))
		return;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_READ, ctx->param[0], purpose))
		return;
	read_for_purpose(ctx, ctx->param[0], purpose, "contacts.read");
}

void h_contact_lookup(struct reqctx *ctx)
{
	const char *purpose, *email = http_query(ctx->http, "email");
	uint8_t bidx[32];
	char id[STORE_ID_CAP];
	if (email == NULL || strlen(email) > 254) {
		err_set(ERR_INVALID, "look up by ?email=ADDRESS&purpose=NAME");
		reply_problem(ctx, ERR_INVALID, NULL);
		app_send(ctx);
		return;
	}
	if (!purpose_param(ctx, &purpose))
		return;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_READ, NULL, purpose))
		return;
	if (contact_email_hashes(ctx->app->keys, email, bidx, NULL) != 0) {
		err_set(ERR_INVALID, "email: %s", err_msg());
		reply_problem(ctx, ERR_INVALID, NULL);
		app_send(ctx);
		return;
	}
	int rc = store_contact_find_email(ctx->rd, bidx, id);
	if (rc != 0 && rc != ERR_NOTFOUND) {
		reply_problem(ctx, rc, NULL);
		app_send(ctx);
		return;
	}
	read_for_purpose(ctx, rc == 0 ? id : NULL, purpose, "contacts.lookup");
}

/* ---- update ---- */

static int apply_update(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct contact_write *w = ctx->state;
	struct store_contact ct;
	uint8_t dek[32];
	int rc = app_active_contact(ctx, wc, ctx->param[0], &ct);
	if (rc == 0)
		rc = contact_unwrap(ctx->app->keys, &ct, dek);
	if (rc != 0)
		goto out;
	json_t *cf = json_object_get(w->body, "collected_for");
	if (cf != NULL) {
		/* collected_for is the gate of purpose limitation: narrowing it
		 * is an ordinary update, widening it a right of its own. The
		 * comparison runs here, on the writer, against the value the
		 * update replaces, and the entry records both lists. */
		char prev[STORE_LIST_CAP];
		snprintf(prev, sizeof prev, "%s", ct.collected_for);
		if ((rc = contact_purposes_join(cf, ct.collected_for, sizeof ct.collected_for)) != 0)
			goto out;
		audit_detail(ctx, json_pack("{s:s, s:s}", "collected_for_old", prev, "collected_for_new",
					    ct.collected_for));
		if (ctx->job.entry.detail[0] == '\0') {
			/* Never change the gate without recording it in full. */
			audit_decide(ctx, false, "too_large");
			rc = err_set(ERR_TOOBIG, "collected_for is too long to record in the audit trail");
			goto out;
		}
		if (contact_purposes_widen(prev, ct.collected_for) &&
		    !policy_role_may(ctx->policy, ctx->role, POLICY_ACT_CONTACTS_WIDEN_PURPOSES)) {
			atomic_fetch_add(&ctx->app->metrics.denials, 1);
			audit_decide(ctx, false, "purpose_widening_denied");
			rc = err_set(ERR_DENIED, "role %s may narrow collected_for but not add purposes to it "
						 "(that needs contacts.widen_purposes)", ctx->role);
			goto out;
		}
	}
	if (json_is_string(json_object_get(w->body, "source")))
		snprintf(ct.source, sizeof ct.source, "%s", json_string_value(json_object_get(w->body, "source")));
	if (json_is_string(json_object_get(w->body, "owner")))
		snprintf(ct.owner, sizeof ct.owner, "%s", json_string_value(json_object_get(w->body, "owner")));
	ct.updated_us = w->now;
	if ((rc = store_contact_update(wc, &ct)) != 0)
		goto out;
	if (json_object_get(w->body, "email") != NULL || json_object_get(w->body, "phone") != NULL) {
		/* Recompute both indexes from the values that will be current. */
		json_t *email = json_object_get(w->body, "email"), *phone = json_object_get(w->body, "phone");
		json_t *cur_email = NULL, *cur_phone = NULL;
		uint8_t eb[32], pb[32], es[32], ps[32];
		bool he = false, hp = false;
		if (email == NULL || phone == NULL) {
			json_t *all = NULL;
			char names[AUDIT_FIELDS_MAX + 1];
			struct policy_field_info fe, fp;
			uint64_t mask = 0;
			if (policy_field_get(ctx->policy, "email", &fe) == 0)
				mask |= UINT64_C(1) << fe.index;
			if (policy_field_get(ctx->policy, "phone", &fp) == 0)
				mask |= UINT64_C(1) << fp.index;
			if ((rc = contact_fields_json(wc, ctx->app->keys, ctx->policy, &ct, mask, &all, names,
						      sizeof names)) != 0)
				goto out;
			if (email == NULL)
				cur_email = json_incref(json_object_get(all, "email"));
			if (phone == NULL)
				cur_phone = json_incref(json_object_get(all, "phone"));
			json_decref(all);
		}
		json_t *e = email ? email : cur_email, *p = phone ? phone : cur_phone;
		if (json_is_string(e) && contact_email_hashes(ctx->app->keys, json_string_value(e), eb, es) == 0)
			he = true;
		if (json_is_string(p) && contact_phone_hashes(ctx->app->keys, json_string_value(p), pb, ps) == 0)
			hp = true;
		json_decref(cur_email);
		json_decref(cur_phone);
		rc = store_contact_set_index(wc, ct.id, he ? eb : NULL, hp ? pb : NULL, he ? es : NULL,
					     hp ? ps : NULL);
		if (rc != 0) {
			if (rc == ERR_CONFLICT)
				audit_decide(ctx, false, "duplicate_email");
			goto out;
		}
	}
	rc = put_fields(wc, ctx->policy, dek, ct.id, w->body);
out:
	crypto_wipe(dek, sizeof dek);
	if (rc != 0 && strcmp(ctx->job.entry.decision, "allow") == 0)
		audit_decide(ctx, false, "error");
	return rc;
}

void h_contact_update(struct reqctx *ctx)
{
	json_t *body;
	int rc;
	if (!app_require(ctx, POLICY_ACT_CONTACTS_UPDATE, ctx->param[0], NULL))
		return;
	if ((body = app_json_body(ctx)) == NULL)
		return;
	if ((rc = contact_validate(ctx->policy, body, true)) != 0) {
		json_decref(body);
		reply_problem(ctx, rc, NULL);
		app_send(ctx);
		return;
	}
	struct contact_write *w = calloc(1, sizeof *w);
	if (w == NULL) {
		json_decref(body);
		reply_problem(ctx, err_set(ERR_NOMEM, "out of memory"), NULL);
		app_send(ctx);
		return;
	}
	w->body = body;
	w->now = now_us();
	ctx->state = w;
	ctx->state_free = contact_write_free;
	audit_begin(ctx, "contacts.update", ctx->param[0], NULL, NULL);
	audit_decide(ctx, true, "updated");
	char names[AUDIT_FIELDS_MAX + 1] = "";
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		int k = snprintf(names + n, sizeof names - n, "%s%s", n ? "," : "", key);
		if (k > 0 && (size_t)k < sizeof names - n)
			n += (size_t)k;
	}
	audit_fields(ctx, names);
	reply_json(ctx, 200, json_pack("{s:s, s:o}", "id", ctx->param[0], "updated_at", json_time(w->now)));
	ctx->job.apply = apply_update;
	app_commit(ctx);
}

/* ---- erase ---- */

static int apply_erase(struct store_conn *wc, struct writer_job *job)
{
	struct reqctx *ctx = job->ctx;
	struct store_contact ct;
	int rc = app_active_contact(ctx, wc, ctx->param[0], &ct);
	if (rc != 0)
		return rc;
	return contact_erase(wc, &ct, now_us());
}

void h_contact_erase(struct reqctx *ctx)
{
	if (!app_require(ctx, POLICY_ACT_CONTACTS_ERASE, ctx->param[0], NULL))
		return;
	audit_begin(ctx, "contacts.erase", ctx->param[0], NULL, NULL);
	audit_decide(ctx, true, "erased");
	reply_json(ctx, 200, json_pack("{s:s, s:s, s:o}", "id", ctx->param[0], "status", "erased",
				       "erased_at", json_time(now_us())));
	ctx->job.apply = apply_erase;
	/* Also when the contact was erased before: a retried erasure (after a
	 * 503) is confirmed only once no older copy is left in the WAL. */
	ctx->job.purge_wal = true;
	app_commit(ctx);
}

const struct route contact_routes[] = {
	{ "POST", "/v1/contacts", h_contact_create, NULL, false, 0, "contacts.create" },
	{ "GET", "/v1/contacts", h_contact_lookup, NULL, false, 0, "contacts.lookup" },
	{ "GET", "/v1/contacts/{id}", h_contact_get, NULL, false, 0, "contacts.read" },
	{ "PATCH", "/v1/contacts/{id}", h_contact_update, NULL, false, 0, "contacts.update" },
	{ "DELETE", "/v1/contacts/{id}", h_contact_erase, NULL, false, 0, "contacts.erase" },
	{ 0 },
};
