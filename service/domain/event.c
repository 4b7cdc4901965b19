/*
 * event: the outbox hook (see event.h).
 */
#include "service/domain/event.h"

#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/domain/contact.h"
#include "service/store/store.h"

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

int event_emit(struct txn *t, const char *type, const char *contact_id, json_t *data)
{
	int64_t subscribers = 0, version = 0, queued = 0;
	json_t *body = NULL;
	char *text = NULL;
	int rc;
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
	rc = store_outbox_add(t->c, type, contact_id, version, text, t->now_us, &queued);
out:
	free(text);
	json_decref(body);
	json_decref(data);
	return rc;
}
