/*
 * provider: the rules of inbound provider events (see provider.h).
 */
#include "service/domain/provider.h"

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/crypto/fieldcrypt.h"
#include "service/crypto/provsig.h"
#include "service/domain/contact.h"
#include "service/domain/suppression.h"
#include "service/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[PROVIDER_COUNT] = {
	[PROVIDER_SENDGRID] = "sendgrid",
	[PROVIDER_MAILGUN] = "mailgun",
	[PROVIDER_POSTMARK] = "postmark",
};

int provider_from_name(const char *name, enum provider_kind *out)
{
	for (int i = 0; name != NULL && i < PROVIDER_COUNT; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum provider_kind)i;
			return 0;
		}
	return err_set(ERR_NOTFOUND, "no such event provider");
}

const char *provider_name(enum provider_kind k)
{
	return (unsigned)k < PROVIDER_COUNT ? names[k] : "";
}

bool provider_configured(const struct provsig *ps, enum provider_kind k)
{
	switch (k) {
	case PROVIDER_SENDGRID: return provsig_has_sendgrid(ps);
	case PROVIDER_MAILGUN: return provsig_has_mailgun(ps);
	case PROVIDER_POSTMARK: return provsig_has_postmark(ps);
	default: return false;
	}
}

int provider_fresh(const struct txn *t, const char *timestamp)
{
	char *end = NULL;
	if (timestamp == NULL || timestamp[0] < '0' || timestamp[0] > '9' || strlen(timestamp) > 12)
		return err_set(ERR_UNAUTHENTICATED, "the signed timestamp is missing or not Unix seconds");
	long long s = strtoll(timestamp, &end, 10);
	if (*end != '\0')
		return err_set(ERR_UNAUTHENTICATED, "the signed timestamp is not Unix seconds");
	long long now = (long long)(t->now_us / 1000000);
	if (s < now - LIMIT_EVENT_TOLERANCE_SECONDS || s > now + LIMIT_EVENT_TOLERANCE_SECONDS)
		return err_set(ERR_UNAUTHENTICATED, "the signed timestamp is more than %d seconds from now",
			       LIMIT_EVENT_TOLERANCE_SECONDS);
	return 0;
}

int provider_authenticate(const struct txn *t, const struct provsig *ps, enum provider_kind k,
			  const struct provider_proof *p, const char **why)
{
	int rc;
	*why = "bad_signature";
	switch (k) {
	case PROVIDER_SENDGRID:
		/* The signature first: a stale timestamp is only worth saying
		 * to someone who holds the key. */
		if ((rc = provsig_sendgrid_verify(ps, p->timestamp, p->body, p->len, p->signature)) != 0)
			return rc;
		break;
	case PROVIDER_MAILGUN:
		if ((rc = provsig_mailgun_verify(ps, p->timestamp, p->token, p->signature)) != 0)
			return rc;
		break;
	case PROVIDER_POSTMARK:
		/* Postmark signs nothing; its requests carry no timestamp, so
		 * replays are answered by the event-id dedupe alone. */
		return provsig_postmark_verify(ps, p->authorization);
	default: return err_set(ERR_UNAUTHENTICATED, "no such event provider");
	}
	*why = "stale_timestamp";
	return provider_fresh(t, p->timestamp);
}

/* The purpose a SendGrid group means, if the table and the policy know it. */
static const char *group_purpose(const struct txn *t, const struct provider_groups *groups, const char *group)
{
	struct policy_purpose_info pi;
	if (groups == NULL || group[0] == '\0')
		return NULL;
	for (size_t i = 0; i < groups->n; i++)
		if (strcmp(groups->map[i].group, group) == 0)
			return policy_purpose_get(t->policy, groups->map[i].purpose, &pi) == 0
				       ? groups->map[i].purpose
				       : NULL;
	return NULL;
}

static void list_id(struct provider_counts *out, const uint8_t hash[32])
{
	size_t n = strlen(out->ids);
	if (n + 18 > sizeof out->ids)
		return; /* the count says how many there were */
	if (n > 0)
		out->ids[n++] = ',';
	hex_encode(hash, 8, out->ids + n);
}

static int take_one(struct txn *t, const char *provider, const struct evp_item *it,
		    const struct provider_groups *groups, struct provider_counts *out)
{
	uint8_t id_hash[32], shash[32];
	int rc = fieldcrypt_keyed_hash(t->keys, FC_HASH_EVENT, it->id, strlen(it->id), id_hash);
	if (rc != 0)
		return rc;
	if ((rc = store_provider_event_once(t->c, provider, id_hash, t->now_us)) < 0)
		return rc;
	if (rc == 0) {
		out->replayed++;
		return 0;
	}
	list_id(out, id_hash);
	if (it->kind == EVP_SOFT) {
		out->soft++;
		return 0;
	}
	if (contact_hash_email(t, it->email, NULL, shash) != 0)
		return err_set(ERR_INVALID, "an event names an address that is not valid");
	const char *purpose = group_purpose(t, groups, it->group);
	int64_t created = it->time_us;
	if (created <= 0 || created > t->now_us + (int64_t)LIMIT_CLOCK_AHEAD_SECONDS * 1000000)
		created = t->now_us;
	struct store_suppression sp = {
		.kind = "email",
		.scope = suppression_scope_name(purpose ? SUPPRESSION_SCOPE_PURPOSE : SUPPRESSION_SCOPE_ALL),
		.scope_value = purpose ? purpose : "",
		.reason = it->reason,
		.source = provider,
		.created_us = created,
		.recorded_us = t->now_us,
	};
	memcpy(sp.hash, shash, 32);
	mem_wipe(shash, sizeof shash);
	if ((rc = suppression_add(t, &sp)) < 0)
		return rc;
	if (rc == 1)
		out->suppressed++;
	else
		out->already++;
	return 0;
}

int provider_take_in(struct txn *t, const char *provider, const struct evp_item *items, size_t n,
		     const struct provider_groups *groups, struct provider_counts *out)
{
	memset(out, 0, sizeof *out);
	out->events = n;
	for (size_t i = 0; i < n; i++) {
		if (items[i].kind == EVP_IGNORED) {
			out->ignored++;
			continue;
		}
		int rc = take_one(t, provider, &items[i], groups, out);
		if (rc != 0)
			return rc;
	}
	return 0;
}
