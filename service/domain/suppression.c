/*
 * suppression: scopes, reasons, coverage and lifting. See suppression.h.
 */
#include "service/domain/suppression.h"

#include "service/base/error.h"
#include "service/domain/event.h"
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

static const char *const scope_names[SUPPRESSION_SCOPE_COUNT] = {
	[SUPPRESSION_SCOPE_ALL] = "all",
	[SUPPRESSION_SCOPE_PURPOSE] = "purpose",
	[SUPPRESSION_SCOPE_CHANNEL] = "channel",
};

static const char *const reason_names[SUPPRESSION_REASON_COUNT] = {
	[SUPPRESSION_REASON_UNSUBSCRIBE] = "unsubscribe",
	[SUPPRESSION_REASON_WITHDRAWAL] = "withdrawal",
	[SUPPRESSION_REASON_BOUNCE] = "bounce",
	[SUPPRESSION_REASON_COMPLAINT] = "complaint",
	[SUPPRESSION_REASON_ERASURE] = "erasure",
	[SUPPRESSION_REASON_MANUAL] = "manual",
	[SUPPRESSION_REASON_GPC] = "gpc",
};

const char *suppression_scope_name(enum suppression_scope s)
{
	return (unsigned)s < SUPPRESSION_SCOPE_COUNT ? scope_names[s] : "";
}

int suppression_scope_from_name(const char *name, enum suppression_scope *out)
{
	for (int i = 0; name != NULL && i < SUPPRESSION_SCOPE_COUNT; i++)
		if (strcmp(name, scope_names[i]) == 0) {
			*out = (enum suppression_scope)i;
			return 0;
		}
	return err_set(ERR_INVALID, "scope must be all, purpose or channel");
}

const char *suppression_reason_name(enum suppression_reason r)
{
	return (unsigned)r < SUPPRESSION_REASON_COUNT ? reason_names[r] : "";
}

int suppression_reason_from_name(const char *name, enum suppression_reason *out)
{
	for (int i = 0; name != NULL && i < SUPPRESSION_REASON_COUNT; i++)
		if (strcmp(name, reason_names[i]) == 0) {
			*out = (enum suppression_reason)i;
			return 0;
		}
	return err_set(ERR_INVALID, "reason must be unsubscribe, withdrawal, bounce, complaint, erasure, "
				    "manual or gpc");
}

void suppression_covering(const char *purpose, const char *channel, struct store_scope_keys *out)
{
	memset(out, 0, sizeof *out);
	out->scope[0] = scope_names[SUPPRESSION_SCOPE_ALL];
	out->value[0] = "";
	if (purpose != NULL && purpose[0] != '\0') {
		out->scope[1] = scope_names[SUPPRESSION_SCOPE_PURPOSE];
		out->value[1] = purpose;
	}
	if (channel != NULL && channel[0] != '\0') {
		out->scope[2] = scope_names[SUPPRESSION_SCOPE_CHANNEL];
		out->value[2] = channel;
	}
}

bool suppression_may_lift(enum suppression_lifter lifter, enum suppression_reason reason)
{
	if (reason == SUPPRESSION_REASON_ERASURE)
		return false; /* never, by anyone */
	if (lifter == SUPPRESSION_BY_OPERATOR)
		return true;
	return reason == SUPPRESSION_REASON_UNSUBSCRIBE || reason == SUPPRESSION_REASON_WITHDRAWAL ||
	       reason == SUPPRESSION_REASON_GPC;
}

/* The reasons lifter may lift, comma-separated, for the store's question. */
static void liftable(enum suppression_lifter lifter, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (int r = 0; r < SUPPRESSION_REASON_COUNT; r++) {
		if (!suppression_may_lift(lifter, (enum suppression_reason)r))
			continue;
		int k = snprintf(out + n, cap - n, "%s%s", n ? "," : "", reason_names[r]);
		if (k > 0 && (size_t)k < cap - n)
			n += (size_t)k;
	}
}

int suppression_may_add(const struct txn *t, const char *role, const char *reason)
{
	/* An erasure suppression can never be lifted, so it is reserved for
	 * erasure itself and for roles that may erase (importing a former
	 * system's erasures): others could block an address for good. */
	if (strcmp(reason, reason_names[SUPPRESSION_REASON_ERASURE]) == 0 &&
	    !policy_role_may(t->policy, role, POLICY_ACT_CONTACTS_ERASE))
		return err_set(ERR_DENIED,
			       "reason erasure is recorded by erasing a contact; role %s may "
			       "not add one",
			       role);
	return 0;
}

int suppression_list(struct txn *t, const uint8_t hash[32], store_suppression_cb cb, void *ctx)
{
	return store_suppressions_active(t->c, hash, cb, ctx);
}

int suppression_add(struct txn *t, const struct store_suppression *sp)
{
	int rc = store_suppression_add(t->c, sp);
	if (rc != 1)
		return rc;
	int erc = event_emit(t, EVENT_SUPPRESSION_ADDED, "",
			     json_pack("{s:s, s:s, s:s, s:s}", "kind", sp->kind, "scope", sp->scope,
				       "scope_value", sp->scope_value ? sp->scope_value : "", "reason",
				       sp->reason));
	return erc != 0 ? erc : rc;
}

int suppression_add_many(struct txn *t, const struct store_suppression *sp, size_t n, bool *added)
{
	bool wanted = false;
	int rc = store_suppressions_add_many(t->c, sp, n, added);
	if (rc == 0 && n > 0)
		rc = event_wanted(t, EVENT_SUPPRESSION_ADDED, &wanted);
	for (size_t i = 0; wanted && rc == 0 && i < n; i++)
		if (added[i])
			rc = event_emit(t, EVENT_SUPPRESSION_ADDED, "",
					json_pack("{s:s, s:s, s:s, s:s}", "kind", sp[i].kind, "scope",
						  sp[i].scope, "scope_value",
						  sp[i].scope_value ? sp[i].scope_value : "", "reason",
						  sp[i].reason));
	return rc;
}

/* The suppression.lifted event of a lift that lifted n. */
static int lifted_event(struct txn *t, const char *scope, const char *scope_value, int64_t n)
{
	if (n <= 0)
		return 0;
	return event_emit(t, EVENT_SUPPRESSION_LIFTED, "",
			  json_pack("{s:s, s:s, s:I}", "scope", scope ? scope : "", "scope_value",
				    scope_value ? scope_value : "", "lifted", (json_int_t)n));
}

int suppression_match(struct txn *t, const uint8_t *hash_a, const uint8_t *hash_b, const char *purpose,
		      const char *channel, char reason[STORE_NAME_CAP])
{
	struct store_scope_keys keys;
	suppression_covering(purpose, channel, &keys);
	return store_suppression_match(t->c, hash_a, hash_b, &keys, reason);
}

int suppression_lift(struct txn *t, const uint8_t hash[32], const char *scope, const char *scope_value,
		     const char *by, int64_t *lifted)
{
	char reasons[128];
	int64_t n = 0;
	liftable(SUPPRESSION_BY_OPERATOR, reasons, sizeof reasons);
	int rc = store_suppressions_lift(t->c, hash, scope, scope_value, reasons, t->now_us, by, &n);
	if (lifted != NULL)
		*lifted = n;
	return rc != 0 ? rc : lifted_event(t, scope, scope_value, n);
}

int suppression_lift_by_subject(struct txn *t, const uint8_t hash[32], const char *purpose, const char *by)
{
	char reasons[128];
	int64_t n = 0;
	liftable(SUPPRESSION_BY_SUBJECT, reasons, sizeof reasons);
	int rc = store_suppressions_lift(t->c, hash, scope_names[SUPPRESSION_SCOPE_PURPOSE], purpose, reasons,
					 t->now_us, by, &n);
	return rc != 0 ? rc : lifted_event(t, scope_names[SUPPRESSION_SCOPE_PURPOSE], purpose, n);
}

int suppression_subject_each(struct txn *t, const struct store_contact *ct, store_subject_suppression_cb cb,
			     void *ctx)
{
	return store_subject_suppressions_each(t->c, ct->has_email_shash ? ct->email_shash : NULL,
					       ct->has_phone_shash ? ct->phone_shash : NULL, cb, ctx);
}

static int erased_cb(void *arg, const struct store_suppression_row *row)
{
	bool *found = arg;
	if (strcmp(row->reason, suppression_reason_name(SUPPRESSION_REASON_ERASURE)) == 0)
		*found = true;
	return 0;
}

int suppression_previously_erased(struct txn *t, const struct store_contact *ct, bool *out)
{
	int rc = 0;
	*out = false;
	if (ct->has_email_shash)
		rc = store_suppressions_active(t->c, ct->email_shash, erased_cb, out);
	if (rc == 0 && !*out && ct->has_phone_shash)
		rc = store_suppressions_active(t->c, ct->phone_shash, erased_cb, out);
	return rc;
}
