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
	[PROVIDER_SES] = "ses",
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

/* ---- Amazon SES through SNS ---- */

bool provider_ses_configured(const struct provider_ses *cfg)
{
	return cfg != NULL && cfg->n_topics > 0;
}

/* Whether host (n bytes, already lower case) is suffix or ends with it on a
 * label boundary: ".amazonaws.com" admits sns.eu-west-1.amazonaws.com, and
 * "localhost" admits localhost, but neither admits evilamazonaws.com. */
static bool host_under(const char *host, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);
	const char *bare = suffix[0] == '.' ? suffix + 1 : suffix;
	size_t bl = strlen(bare);
	if (bl == 0)
		return false;
	if (n == bl && memcmp(host, bare, n) == 0)
		return true;
	if (suffix[0] == '.')
		return n > sl && memcmp(host + n - sl, suffix, sl) == 0;
	return n > bl + 1 && host[n - bl - 1] == '.' && memcmp(host + n - bl, bare, bl) == 0;
}

int provider_sns_url_ok(const struct provider_ses *cfg, const char *url, bool cert)
{
	char host[LIMIT_SES_HOST_BYTES];
	if (url == NULL || strncmp(url, "https://", 8) != 0)
		return err_set(ERR_UNAUTHENTICATED, "the SNS URL is not https://");
	const char *a = url + 8;
	size_t alen = strcspn(a, "/?#"), hlen = 0;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return err_set(ERR_UNAUTHENTICATED,
				       "the SNS URL holds a space or a control character");
	if (a[alen] != '/')
		return err_set(ERR_UNAUTHENTICATED, "the SNS URL has no path");
	/* Host characters only, then an optional port: no credentials, no
	 * bracketed address, no percent-encoding that a client would read
	 * differently. */
	while (hlen < alen && a[hlen] != ':') {
		char c = a[hlen];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return err_set(ERR_UNAUTHENTICATED, "the SNS URL's host is not a host name");
		if (hlen + 1 >= sizeof host)
			return err_set(ERR_UNAUTHENTICATED, "the SNS URL's host is too long");
		host[hlen] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		hlen++;
	}
	host[hlen] = '\0';
	if (hlen < alen && (alen - hlen < 2 || strspn(a + hlen + 1, "0123456789") != alen - hlen - 1))
		return err_set(ERR_UNAUTHENTICATED, "the SNS URL's port is not a number");
	if (hlen == 0 || !host_under(host, hlen, cfg->cert_host_suffix))
		return err_set(ERR_UNAUTHENTICATED, "the SNS URL's host is not under %s",
			       cfg->cert_host_suffix);
	if (cert) {
		const char *path = a + alen;
		size_t plen = strlen(path);
		if (strpbrk(path, "?#") != NULL || plen < 5 || strcmp(path + plen - 4, ".pem") != 0)
			return err_set(ERR_UNAUTHENTICATED, "the SigningCertURL is not a .pem file");
	}
	return 0;
}

int provider_sns_authenticate(const struct txn *t, const struct provider_ses *cfg, const struct evp_sns *m,
			      provider_cert_fetch fetch, void *fetch_ctx, const char **why)
{
	char *pem = NULL;
	size_t len = 0;
	bool known = false;
	int rc;
	*why = "unknown_topic";
	for (size_t i = 0; i < cfg->n_topics && !known; i++)
		known = strcmp(cfg->topics[i], m->topic_arn) == 0;
	if (!known)
		return err_set(ERR_UNAUTHENTICATED, "the TopicArn is not one of events.ses.topic_arns");
	*why = "bad_signature";
	if ((rc = provider_sns_url_ok(cfg, m->cert_url, true)) != 0)
		return rc;
	if ((rc = fetch(fetch_ctx, m->cert_url, &pem, &len)) != 0) {
		*why = "cert_unavailable";
		return err_set(ERR_UNAVAILABLE, "the SNS signing certificate cannot be fetched now");
	}
	rc = provsig_sns_verify(pem, len, m->version, m->canonical, m->canonical_len, m->signature);
	free(pem);
	if (rc != 0)
		return rc;
	*why = "stale_timestamp";
	if (m->time_us < t->now_us - (int64_t)LIMIT_SNS_TOLERANCE_SECONDS * 1000000 ||
	    m->time_us > t->now_us + (int64_t)LIMIT_EVENT_TOLERANCE_SECONDS * 1000000)
		return err_set(ERR_UNAUTHENTICATED,
			       "the SNS Timestamp is more than %d seconds old or in the future",
			       LIMIT_SNS_TOLERANCE_SECONDS);
	return 0;
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
