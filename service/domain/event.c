/*
 * event: the outbox hook (see event.h).
 */
#include "service/domain/event.h"

#include "policy/policy.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/domain/record.h"
#include "service/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = { EVENT_CONSENT_CHANGED, EVENT_SUPPRESSION_ADDED, EVENT_SUPPRESSION_LIFTED,
				     EVENT_CONTACT_ERASED };

bool event_type_known(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(name, types[i]) == 0)
			return true;
	return false;
}

uint64_t event_personal_fields(const struct policy *p, const char *role, const char *purpose)
{
	struct policy_field_info f;
	uint64_t mask = 0;
	static const char *const names[] = { "email", "phone" };
	if (p == NULL || purpose == NULL || !policy_role_may_purpose(p, role, purpose))
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (policy_field_get(p, names[i], &f) == 0)
			mask |= UINT64_C(1) << f.index;
	return mask & policy_role_fields(p, role, purpose);
}

struct wanted {
	const struct policy *p;
	const char *type, *purpose;
	uint64_t mask;
};

static int wanted_cb(void *ctx, const struct store_webhook *w)
{
	struct wanted *x = ctx;
	char list[STORE_TEXT_CAP + 2], want[STORE_EVENT_TYPE_CAP + 2];
	snprintf(list, sizeof list, ",%s,", w->events);
	snprintf(want, sizeof want, ",%s,", x->type);
	if (w->disabled_us == 0 && strstr(list, want) != NULL)
		x->mask |= event_personal_fields(x->p, w->role, x->purpose);
	return 0;
}

/* The personal values any subscriber may see (the union over their roles),
 * sealed under the contact's own data key: an erasure makes them
 * unreadable, and drops them (store_outbox_forget_personal). *sealed stays
 * NULL when no subscriber may see any. */
static int seal_personal(struct txn *t, const char *type, const char *contact_id, const char *purpose,
			 uint8_t **sealed, size_t *len)
{
	struct wanted x = { t->policy, type, purpose, 0 };
	struct store_contact ct;
	uint8_t dek[32];
	char names[64];
	json_t *vals = NULL;
	int rc = store_webhooks_each(t->c, wanted_cb, &x, NULL);
	if (rc != 0 || x.mask == 0)
		return rc;
	if ((rc = store_contact_get(t->c, contact_id, &ct)) != 0 || ct.erased)
		return rc == ERR_NOTFOUND ? 0 : rc;
	if ((rc = record_fields_json(t, &ct, x.mask, &vals, names, sizeof names)) != 0)
		goto out;
	if (json_object_size(vals) == 0)
		goto out;
	if ((rc = record_unwrap(t->keys, &ct, dek)) == 0)
		rc = record_seal(dek, "outbox", contact_id, "personal", vals, sealed, len);
out:
	crypto_wipe(dek, sizeof dek);
	json_decref(vals);
	return rc;
}

int event_wanted(struct txn *t, const char *type, bool *out)
{
	int64_t n = 0;
	int rc = store_webhook_subscribers(t->c, type, &n);
	*out = rc != 0 || n > 0; /* on a failure, ask event_emit, which fails too */
	return rc;
}

int event_emit(struct txn *t, const char *type, const char *contact_id, json_t *data)
{
	uint8_t *personal = NULL;
	size_t personal_len = 0;
	int64_t subscribers = 0, version = 0, queued = 0;
	json_t *body = NULL;
	char *text = NULL;
	int rc = 0;
	/* First, whatever else happens: an erased person's values leave the
	 * outbox with them. */
	if (strcmp(type, EVENT_CONTACT_ERASED) == 0 &&
	    (rc = store_outbox_forget_personal(t->c, contact_id)) != 0)
		goto out;
	if (data == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Most installations have no endpoint: then the outbox stays empty. */
	if ((rc = store_webhook_subscribers(t->c, type, &subscribers)) != 0 || subscribers == 0)
		goto out;
	if (contact_id[0] != '\0') {
		if ((rc = store_outbox_next_version(t->c, contact_id, &version)) != 0)
			goto out;
		json_object_set_new(data, "contact_id", json_string(contact_id));
		json_object_set_new(data, "version", json_integer(version));
	}
	body = json_pack("{s:s, s:o, s:O}", "type", type, "timestamp", json_time(t->now_us), "data", data);
	text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (text == NULL) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto out;
	}
	if (strlen(text) > LIMIT_WEBHOOK_BODY_BYTES) {
		rc = err_set(ERR_TOOBIG, "a webhook event body is at most %d bytes",
			     LIMIT_WEBHOOK_BODY_BYTES);
		goto out;
	}
	if (strcmp(type, EVENT_CONSENT_CHANGED) == 0 &&
	    (rc = seal_personal(t, type, contact_id, json_string_value(json_object_get(data, "purpose")),
				&personal, &personal_len)) != 0)
		goto out;
	rc = store_outbox_add(t->c, type, contact_id, version, text, personal, personal_len, t->now_us,
			      &queued);
out:
	free(personal);
	free(text);
	json_decref(body);
	json_decref(data);
	return rc;
}
