/*
 * backend: the store_* functions of store.h, each dispatched through the
 * table of the backend that opened the store (backend.h), and store_open,
 * which picks that backend from the `database` setting.
 */
#include "service/store/backend.h"
#include "service/store/store.h"

#include "service/base/error.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* An entry a backend leaves NULL (a store function added to the interface
 * after that backend was written) is an error naming the function, not a
 * crash: the conformance suite then says what is missing. */
#define CALL(be, fn, ...) ((be)->fn != NULL ? (be)->fn(__VA_ARGS__) : unimplemented((be), #fn))

static int unimplemented(const struct store_backend *be, const char *fn)
{
	return err_set(ERR_UNSUPPORTED, "the %s store backend does not implement store_%s", be->name, fn);
}

static const struct store_backend *const builtin[] = {
#ifdef CONSENTD_WITH_POSTGRES
	&store_pg_backend,
#endif
	&store_sqlite_backend,
};

/* A PostgreSQL URI in a consentd built without libpq: refused with a clear
 * message rather than taken for a file name. */
static bool is_postgres_uri(const char *location)
{
	return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

int store_open(struct store **out, const char *location)
{
	*out = NULL;
	if (location == NULL || location[0] == '\0')
		return err_set(ERR_INVALID, "the database setting is empty");
	if (is_postgres_uri(location) && !builtin[0]->accepts(location))
		return err_set(ERR_INVALID, "the database setting names a PostgreSQL server, but the "
					    "PostgreSQL backend is not built into this consentd; use "
					    "a file path (SQLite)");
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
		if (builtin[i]->accepts(location))
			return builtin[i]->open(out, location);
	return err_set(ERR_INVALID, "no store backend of this consentd serves the database setting");
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->be->close(st);
}

int store_schema_version(struct store *st)
{
	return CALL(st->be, schema_version, st);
}

int store_conn_get(struct store *st, struct store_conn **out)
{
	return CALL(st->be, conn_get, st, out);
}

void store_conn_put(struct store *st, struct store_conn *c)
{
	if (c == NULL)
		return;
	st->be->conn_put(st, c);
}

int store_conn_bulk_mode(struct store_conn *c)
{
	return CALL(c->be, conn_bulk_mode, c);
}

int store_writer_open(struct store *st, struct store_conn **out)
{
	return CALL(st->be, writer_open, st, out);
}

void store_conn_free(struct store_conn *c)
{
	if (c == NULL)
		return;
	c->be->conn_free(c);
}

int store_wal_truncate(struct store_conn *w, int wait_ms)
{
	return CALL(w->be, wal_truncate, w, wait_ms);
}

int store_begin(struct store_conn *c)
{
	return CALL(c->be, begin, c);
}

int store_commit(struct store_conn *c)
{
	return CALL(c->be, commit, c);
}

int store_rollback(struct store_conn *c)
{
	return CALL(c->be, rollback, c);
}

int store_savepoint(struct store_conn *c)
{
	return CALL(c->be, savepoint, c);
}

int store_release(struct store_conn *c)
{
	return CALL(c->be, release, c);
}

int store_rollback_to(struct store_conn *c)
{
	return CALL(c->be, rollback_to, c);
}

void store_fault_audit(struct store *st, bool fail)
{
	st->be->fault_audit(st, fail);
}

int store_contact_insert(struct store_conn *c, const struct store_contact *ct, const uint8_t *email_bidx,
			 const uint8_t *phone_bidx)
{
	return CALL(c->be, contact_insert, c, ct, email_bidx, phone_bidx);
}

int store_contacts_insert_many(struct store_conn *c, struct store_contact_new *rows, size_t n)
{
	if (c->be->contacts_insert_many != NULL)
		return CALL(c->be, contacts_insert_many, c, rows, n);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, contact_insert, c, rows[i].ct, rows[i].email_bidx, rows[i].phone_bidx);
		rows[i].duplicate = rc == ERR_CONFLICT;
		if (rc != 0 && rc != ERR_CONFLICT)
			return rc;
	}
	return 0;
}

int store_fields_put_many(struct store_conn *c, const struct store_field_new *rows, size_t n)
{
	if (c->be->fields_put_many != NULL)
		return CALL(c->be, fields_put_many, c, rows, n);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, field_put, c, rows[i].contact_id, rows[i].name, rows[i].sealed,
			      rows[i].len);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int store_consents_put_many(struct store_conn *c, const struct store_consent_new *rows, size_t n)
{
	if (c->be->consents_put_many != NULL)
		return CALL(c->be, consents_put_many, c, rows, n);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, consent_put, c, rows[i].cs, rows[i].current);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int store_suppressions_add_many(struct store_conn *c, const struct store_suppression *sp, size_t n,
				bool *added)
{
	if (c->be->suppressions_add_many != NULL)
		return CALL(c->be, suppressions_add_many, c, sp, n, added);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, suppression_add, c, &sp[i]);
		if (rc < 0)
			return rc;
		added[i] = rc == 1;
	}
	return 0;
}

int store_contact_get(struct store_conn *c, const char *id, struct store_contact *out)
{
	return CALL(c->be, contact_get, c, id, out);
}

int store_contact_update(struct store_conn *c, const struct store_contact *ct)
{
	return CALL(c->be, contact_update, c, ct);
}

int store_contact_set_index(struct store_conn *c, const char *id, const uint8_t *email_bidx,
			    const uint8_t *phone_bidx, const uint8_t *email_shash, const uint8_t *phone_shash)
{
	return CALL(c->be, contact_set_index, c, id, email_bidx, phone_bidx, email_shash, phone_shash);
}

int store_contact_find_email(struct store_conn *c, const uint8_t bidx[32], char id_out[STORE_ID_CAP])
{
	return CALL(c->be, contact_find_email, c, bidx, id_out);
}

int store_contact_erase(struct store_conn *c, const char *id, int64_t when_us)
{
	return CALL(c->be, contact_erase, c, id, when_us);
}

int store_contact_count(struct store_conn *c, int64_t *out)
{
	return CALL(c->be, contact_count, c, out);
}

int store_field_put(struct store_conn *c, const char *id, const char *name, const uint8_t *sealed, size_t len)
{
	return CALL(c->be, field_put, c, id, name, sealed, len);
}

int store_field_delete(struct store_conn *c, const char *id, const char *name)
{
	return CALL(c->be, field_delete, c, id, name);
}

int store_fields_each(struct store_conn *c, const char *id, store_field_cb cb, void *ctx)
{
	return CALL(c->be, fields_each, c, id, cb, ctx);
}

int store_contacts_rewrap(struct store_conn *c, store_rewrap_cb cb, void *ctx, int64_t *count)
{
	return CALL(c->be, contacts_rewrap, c, cb, ctx, count);
}

int store_key_versions_in_use(struct store_conn *c, int *versions, int cap, int *n)
{
	return CALL(c->be, key_versions_in_use, c, versions, cap, n);
}

int store_key_check_get(struct store_conn *c, const char *name, uint8_t kcv[32])
{
	return CALL(c->be, key_check_get, c, name, kcv);
}

int store_key_check_add(struct store_conn *c, const char *name, const uint8_t kcv[32])
{
	return CALL(c->be, key_check_add, c, name, kcv);
}

int store_set_pool_size(struct store *st, int n)
{
	/* A backend without a pool of its own (SQLite opens a connection per
	 * reader thread) has nothing to size. */
	return st->be->set_pool_size != NULL ? st->be->set_pool_size(st, n) : 0;
}

int store_consent_put(struct store_conn *c, const struct store_consent *cs, bool current)
{
	return CALL(c->be, consent_put, c, cs, current);
}

int store_consent_get(struct store_conn *c, const char *contact_id, const char *purpose, const char *channel,
		      struct store_consent *out)
{
	return CALL(c->be, consent_get, c, contact_id, purpose, channel, out);
}

int store_consents_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return CALL(c->be, consents_each, c, contact_id, cb, ctx);
}

int store_consent_history_each(struct store_conn *c, const char *contact_id, store_consent_cb cb, void *ctx)
{
	return CALL(c->be, consent_history_each, c, contact_id, cb, ctx);
}

int store_consent_history_count(struct store_conn *c, const char *contact_id, int64_t *out)
{
	return CALL(c->be, consent_history_count, c, contact_id, out);
}

int store_suppression_match(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
			    const struct store_scope_keys *keys, char reason[STORE_NAME_CAP])
{
	return CALL(c->be, suppression_match, c, hash_a, hash_b, keys, reason);
}

int store_principal_insert(struct store_conn *c, const char *name, const char *role,
			   const uint8_t token_hash[32], int64_t when_us)
{
	return CALL(c->be, principal_insert, c, name, role, token_hash, when_us);
}

int store_principal_find(struct store_conn *c, const uint8_t token_hash[32], char name[STORE_TEXT_CAP],
			 char role[STORE_NAME_CAP])
{
	return CALL(c->be, principal_find, c, token_hash, name, role);
}

int store_principal_revoke(struct store_conn *c, const char *name, int64_t when_us)
{
	return CALL(c->be, principal_revoke, c, name, when_us);
}

int store_audit_head(struct store_conn *c, int64_t *seq, uint8_t hash[32])
{
	return CALL(c->be, audit_head, c, seq, hash);
}

int store_audit_append(struct store_conn *c, const struct audit_entry *e)
{
	return CALL(c->be, audit_append, c, e);
}

int store_checkpoint_append(struct store_conn *c, const struct audit_checkpoint *cp)
{
	return CALL(c->be, checkpoint_append, c, cp);
}

int store_checkpoint_latest(struct store_conn *c, struct audit_checkpoint *out)
{
	return CALL(c->be, checkpoint_latest, c, out);
}

/* One walk over the cursor for every backend (each carried its own copy). */
int store_audit_each(struct store_conn *c, const struct store_audit_filter *f, store_audit_cb cb, void *ctx)
{
	struct store_audit_cursor *cur = NULL;
	struct audit_entry *e = malloc(sizeof *e);
	int rc, ret = 0;
	if (e == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = store_audit_cursor_open(c, f, &cur)) != 0) {
		free(e);
		return rc;
	}
	while ((rc = store_audit_cursor_next(cur, e)) == 1)
		if ((ret = cb(ctx, e)) != 0)
			break;
	if (ret == 0 && rc < 0)
		ret = rc;
	store_audit_cursor_close(cur);
	free(e);
	return ret;
}

int store_audit_cursor_open(struct store_conn *c, const struct store_audit_filter *f,
			    struct store_audit_cursor **out)
{
	return CALL(c->be, audit_cursor_open, c, f, out);
}

int store_audit_cursor_next(struct store_audit_cursor *cur, struct audit_entry *e)
{
	return CALL(cur->c->be, audit_cursor_next, cur, e);
}

void store_audit_cursor_close(struct store_audit_cursor *cur)
{
	if (cur == NULL)
		return;
	cur->c->be->audit_cursor_close(cur);
}

int store_audit_hash_at(struct store_conn *c, int64_t seq, uint8_t hash[32])
{
	return CALL(c->be, audit_hash_at, c, seq, hash);
}

int store_checkpoint_cursor_open(struct store_conn *c, int64_t after_size,
				 struct store_checkpoint_cursor **out)
{
	return CALL(c->be, checkpoint_cursor_open, c, after_size, out);
}

int store_checkpoint_cursor_next(struct store_checkpoint_cursor *cur, struct audit_checkpoint *cp)
{
	return CALL(cur->c->be, checkpoint_cursor_next, cur, cp);
}

void store_checkpoint_cursor_close(struct store_checkpoint_cursor *cur)
{
	if (cur == NULL)
		return;
	cur->c->be->checkpoint_cursor_close(cur);
}

int store_link_insert(struct store_conn *c, const struct store_link *l)
{
	return CALL(c->be, link_insert, c, l);
}

int store_link_get(struct store_conn *c, const char *id, struct store_link *out)
{
	return CALL(c->be, link_get, c, id, out);
}

int store_link_revoke(struct store_conn *c, const char *contact_id, const char *id, int64_t when_us)
{
	return CALL(c->be, link_revoke, c, contact_id, id, when_us);
}

int store_links_revoke_contact(struct store_conn *c, const char *contact_id, int64_t when_us, int64_t *count)
{
	return CALL(c->be, links_revoke_contact, c, contact_id, when_us, count);
}

int store_links_revoke_mintable(struct store_conn *c, const char *contact_id, bool may_manage,
				const char *purposes, int64_t when_us, int64_t *count)
{
	return CALL(c->be, links_revoke_mintable, c, contact_id, may_manage, purposes, when_us, count);
}

int store_principal_role(struct store_conn *c, const char *name, char role[STORE_NAME_CAP])
{
	return CALL(c->be, principal_role, c, name, role);
}

int store_subject_suppressions_each(struct store_conn *c, const uint8_t *hash_a, const uint8_t *hash_b,
				    store_subject_suppression_cb cb, void *ctx)
{
	return CALL(c->be, subject_suppressions_each, c, hash_a, hash_b, cb, ctx);
}

int store_filter_by_email(struct store_conn *c, const uint8_t bidx[32], const uint8_t list_hash[32],
			  const char *purpose, const char *channel, const struct store_scope_keys *keys,
			  struct store_filter_row *out)
{
	return CALL(c->be, filter_by_email, c, bidx, list_hash, purpose, channel, keys, out);
}

int store_filter_by_email_many(struct store_conn *c, size_t n, const uint8_t (*bidx)[32],
			       const uint8_t (*list_hash)[32], const char *purpose, const char *channel,
			       const struct store_scope_keys *keys, struct store_filter_row *out)
{
	if (c->be->filter_by_email_many != NULL)
		return CALL(c->be, filter_by_email_many, c, n, bidx, list_hash, purpose, channel, keys, out);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, filter_by_email, c, bidx[i], list_hash[i], purpose, channel, keys,
			      &out[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int store_filter_by_id(struct store_conn *c, const char *id, const char *purpose, const char *channel,
		       const struct store_scope_keys *keys, struct store_filter_row *out)
{
	return CALL(c->be, filter_by_id, c, id, purpose, channel, keys, out);
}

int store_release_put(struct store_conn *c, const char *release_id, int64_t chunk, const uint8_t *ids,
		      size_t n_ids)
{
	return CALL(c->be, release_put, c, release_id, chunk, ids, n_ids);
}

int store_release_find(struct store_conn *c, const char *release_id, const uint8_t id_raw[16])
{
	return CALL(c->be, release_find, c, release_id, id_raw);
}

int store_release_count(struct store_conn *c, const char *release_id, int64_t *out)
{
	return CALL(c->be, release_count, c, release_id, out);
}

int store_release_log_put(struct store_conn *c, const char *release_id, const char *purpose,
			  const char *channel, int64_t at_us, const uint8_t *ids, size_t n_ids)
{
	return CALL(c->be, release_log_put, c, release_id, purpose, channel, at_us, ids, n_ids);
}

int store_release_recent(struct store_conn *c, const uint8_t id_raw[16], const char *purpose,
			 const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			 int64_t *last_us)
{
	return CALL(c->be, release_recent, c, id_raw, purpose, channel, after_us, limit, count, last_us);
}

int store_release_recent_many(struct store_conn *c, size_t n, const uint8_t (*ids)[16], const char *purpose,
			      const char *channel, int64_t after_us, int64_t limit, int64_t *count,
			      int64_t *last_us)
{
	if (c->be->release_recent_many != NULL)
		return CALL(c->be, release_recent_many, c, n, ids, purpose, channel, after_us, limit, count,
			    last_us);
	for (size_t i = 0; i < n; i++) {
		int rc = CALL(c->be, release_recent, c, ids[i], purpose, channel, after_us, limit, &count[i],
			      &last_us[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int store_release_log_each(struct store_conn *c, const uint8_t id_raw[16], int64_t limit,
			   store_release_log_cb cb, void *ctx)
{
	return CALL(c->be, release_log_each, c, id_raw, limit, cb, ctx);
}

int store_release_summary_put(struct store_conn *c, const char *release_id, int64_t at_us,
			      const char *summary)
{
	return CALL(c->be, release_summary_put, c, release_id, at_us, summary);
}

int store_release_summary_get(struct store_conn *c, const char *release_id, int64_t *at_us, char **summary)
{
	return CALL(c->be, release_summary_get, c, release_id, at_us, summary);
}

int store_frequency_put(struct store_conn *c, const char *contact_id, const struct store_frequency *fq)
{
	return CALL(c->be, frequency_put, c, contact_id, fq);
}

int store_frequency_get(struct store_conn *c, const char *contact_id, const char *purpose,
			const char *channel, struct store_frequency *out)
{
	return CALL(c->be, frequency_get, c, contact_id, purpose, channel, out);
}

int store_frequency_each(struct store_conn *c, const char *contact_id, store_frequency_cb cb, void *ctx)
{
	return CALL(c->be, frequency_each, c, contact_id, cb, ctx);
}

int store_release_times_many(struct store_conn *c, size_t n, const uint8_t *ids, const char *purpose,
			     const char *channel, int64_t after_us, int64_t limit, int64_t *times,
			     int64_t *counts)
{
	return CALL(c->be, release_times_many, c, n, ids, purpose, channel, after_us, limit, times, counts);
}

int store_suppression_add(struct store_conn *c, const struct store_suppression *sp)
{
	return CALL(c->be, suppression_add, c, sp);
}

int store_suppressions_active(struct store_conn *c, const uint8_t hash[32], store_suppression_cb cb,
			      void *ctx)
{
	return CALL(c->be, suppressions_active, c, hash, cb, ctx);
}

int store_suppressions_lift(struct store_conn *c, const uint8_t hash[32], const char *scope,
			    const char *scope_value, const char *reasons, int64_t when_us, const char *by,
			    int64_t *lifted)
{
	return CALL(c->be, suppressions_lift, c, hash, scope, scope_value, reasons, when_us, by, lifted);
}

int store_console_session_insert(struct store_conn *c, const struct store_console_session *cs)
{
	return CALL(c->be, console_session_insert, c, cs);
}

int store_console_session_get(struct store_conn *c, const uint8_t id_hash[32],
			      struct store_console_session *out)
{
	return CALL(c->be, console_session_get, c, id_hash, out);
}

int store_console_session_touch(struct store_conn *c, const uint8_t id_hash[32], int64_t seen_us)
{
	return CALL(c->be, console_session_touch, c, id_hash, seen_us);
}

int store_console_session_delete(struct store_conn *c, const uint8_t id_hash[32])
{
	return CALL(c->be, console_session_delete, c, id_hash);
}

int store_console_sessions_expire(struct store_conn *c, int64_t idle_before_us, int64_t created_before_us,
				  int64_t *count)
{
	return CALL(c->be, console_sessions_expire, c, idle_before_us, created_before_us, count);
}

int store_console_stats(struct store_conn *c, enum store_console_stat which, int64_t since_us,
			store_console_stat_cb cb, void *ctx)
{
	return CALL(c->be, console_stats, c, which, since_us, cb, ctx);
}

int store_console_find_phone(struct store_conn *c, const uint8_t bidx[32], char (*ids)[STORE_ID_CAP],
			     size_t cap, size_t *n, bool *more)
{
	return CALL(c->be, console_find_phone, c, bidx, ids, cap, n, more);
}

int store_provider_event_once(struct store_conn *c, const char *provider, const uint8_t id_hash[32],
			      int64_t received_us)
{
	return CALL(c->be, provider_event_once, c, provider, id_hash, received_us);
}

int store_mail_put(struct store_conn *c, const struct store_mail *m)
{
	return CALL(c->be, mail_put, c, m);
}

int store_mail_pending(struct store_conn *c, size_t max, int64_t now_us, store_mail_cb cb, void *ctx)
{
	return CALL(c->be, mail_pending, c, max, now_us, cb, ctx);
}

int store_mail_mark(struct store_conn *c, const char *id, enum store_mail_outcome outcome, int64_t when_us)
{
	return CALL(c->be, mail_mark, c, id, outcome, when_us);
}

int store_confirmation_put(struct store_conn *c, const struct store_confirmation *cf)
{
	return CALL(c->be, confirmation_put, c, cf);
}

int store_confirmation_get(struct store_conn *c, const char *id, struct store_confirmation *out)
{
	return CALL(c->be, confirmation_get, c, id, out);
}

int store_confirmation_done(struct store_conn *c, const char *id, int64_t when_us)
{
	return CALL(c->be, confirmation_done, c, id, when_us);
}

int store_request_put(struct store_conn *c, const struct store_request *r)
{
	return CALL(c->be, request_put, c, r);
}

int store_request_update(struct store_conn *c, const struct store_request *r, int64_t prev_steps)
{
	return CALL(c->be, request_update, c, r, prev_steps);
}

int store_request_get(struct store_conn *c, const char *id, struct store_request *out)
{
	return CALL(c->be, request_get, c, id, out);
}

int store_requests_each(struct store_conn *c, const char *state, int64_t due_before_day, size_t max,
			store_request_cb cb, void *ctx, bool *more)
{
	return CALL(c->be, requests_each, c, state, due_before_day, max, cb, ctx, more);
}

int store_request_step_put(struct store_conn *c, const struct store_request_step *st)
{
	return CALL(c->be, request_step_put, c, st);
}

int store_request_steps_each(struct store_conn *c, const char *request_id, store_request_step_cb cb,
			     void *ctx)
{
	return CALL(c->be, request_steps_each, c, request_id, cb, ctx);
}

int store_requests_due_counts(struct store_conn *c, int64_t today_day, int64_t soon_day, int64_t *overdue,
			      int64_t *due_soon)
{
	return CALL(c->be, requests_due_counts, c, today_day, soon_day, overdue, due_soon);
}

int store_webhook_insert(struct store_conn *c, const struct store_webhook *w)
{
	return CALL(c->be, webhook_insert, c, w);
}

int store_webhook_get(struct store_conn *c, const char *id, struct store_webhook *out)
{
	return CALL(c->be, webhook_get, c, id, out);
}

int store_webhooks_each(struct store_conn *c, store_webhook_cb cb, void *ctx, int64_t *n)
{
	return CALL(c->be, webhooks_each, c, cb, ctx, n);
}

int store_webhook_delete(struct store_conn *c, const char *id, int64_t when_us)
{
	return CALL(c->be, webhook_delete, c, id, when_us);
}

int store_webhook_disable(struct store_conn *c, const char *id, int64_t when_us, const char *reason)
{
	return CALL(c->be, webhook_disable, c, id, when_us, reason);
}

int store_webhook_subscribers(struct store_conn *c, const char *type, int64_t *n)
{
	return CALL(c->be, webhook_subscribers, c, type, n);
}

int store_outbox_next_version(struct store_conn *c, const char *contact_id, int64_t *version)
{
	return CALL(c->be, outbox_next_version, c, contact_id, version);
}

int store_outbox_add(struct store_conn *c, const char *type, const char *contact_id, int64_t version,
		     const char *body, const uint8_t *personal, size_t personal_len, int64_t created_us,
		     int64_t *queued)
{
	return CALL(c->be, outbox_add, c, type, contact_id, version, body, personal, personal_len, created_us,
		    queued);
}

int store_outbox_forget_personal(struct store_conn *c, const char *contact_id)
{
	return CALL(c->be, outbox_forget_personal, c, contact_id);
}

int store_deliveries_each(struct store_conn *c, const char *endpoint_id, int limit, store_delivery_cb cb,
			  void *ctx)
{
	return CALL(c->be, deliveries_each, c, endpoint_id, limit, cb, ctx);
}

int store_deliveries_due(struct store_conn *c, int64_t now_us, int limit, store_delivery_cb cb, void *ctx)
{
	return CALL(c->be, deliveries_due, c, now_us, limit, cb, ctx);
}

int store_mail_claim(struct store_conn *c, const char *owner, size_t max, int64_t now_us, int64_t until_us,
		     store_mail_cb cb, void *ctx)
{
	return CALL(c->be, mail_claim, c, owner, max, now_us, until_us, cb, ctx);
}

int store_mail_release(struct store_conn *c, const char *owner)
{
	return CALL(c->be, mail_release, c, owner);
}

int store_form_nonce_spend(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			   int64_t expires_us)
{
	return CALL(c->be, form_nonce_spend, c, nonce, len, now_us, expires_us);
}

int store_form_nonce_spent(struct store_conn *c, const uint8_t *nonce, size_t len, int64_t now_us,
			   bool *spent)
{
	return CALL(c->be, form_nonce_spent, c, nonce, len, now_us, spent);
}

int store_webhook_claim(struct store_conn *c, const char *endpoint_id, const char *owner, int64_t now_us,
			int64_t until_us)
{
	return CALL(c->be, webhook_claim, c, endpoint_id, owner, now_us, until_us);
}

int store_webhook_release(struct store_conn *c, const char *endpoint_id, const char *owner)
{
	return CALL(c->be, webhook_release, c, endpoint_id, owner);
}

int store_delivery_record(struct store_conn *c, const struct store_delivery *d)
{
	return CALL(c->be, delivery_record, c, d);
}

int store_delivery_retry(struct store_conn *c, const char *endpoint_id, const char *id, int64_t now_us)
{
	return CALL(c->be, delivery_retry, c, endpoint_id, id, now_us);
}

int store_outbox_stats(struct store_conn *c, int64_t *pending, int64_t *oldest_us)
{
	return CALL(c->be, outbox_stats, c, pending, oldest_us);
}
