/*
 * webhook: endpoints and deliveries (see webhook.h).
 */
#include "service/domain/webhook.h"

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/base/limits.h"
#include "service/crypto/fieldcrypt.h"
#include "service/crypto/whsig.h"
#include "service/domain/record.h"
#include "service/domain/event.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static_assert(WEBHOOK_SECRET_CAP == WHSIG_SECRET_CAP, "one secret size");
static_assert(WEBHOOK_SIG_CAP == WHSIG_SIG_CAP, "one signature size");

/* ---- addresses ---- */

bool webhook_addr_loopback(int family, const uint8_t *a)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (family == AF_INET)
		return a[0] == 127;
	if (family == AF_INET6)
		return memcmp(a, v6_loop, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
	return false;
}

bool webhook_addr_public(int family, const uint8_t *a)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (family == AF_INET6 && memcmp(a, v4_mapped, 12) == 0)
		return webhook_addr_public(AF_INET, a + 12);
	if (family == AF_INET) {
		if (a[0] == 0 || a[0] == 10 || a[0] == 127 ||
		    a[0] >= 224) /* this net, private, loopback, multicast, reserved */
			return false;
		if (a[0] == 100 && (a[1] & 0xc0) == 64) /* shared (carrier NAT) 100.64/10 */
			return false;
		if (a[0] == 169 && a[1] == 254) /* link-local, cloud metadata */
			return false;
		if (a[0] == 172 && (a[1] & 0xf0) == 16)
			return false;
		if (a[0] == 192 && a[1] == 168)
			return false;
		if (a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) /* IETF, TEST-NET-1 */
			return false;
		if (a[0] == 198 && (a[1] & 0xfe) == 18) /* benchmarking */
			return false;
		return true;
	}
	if (family == AF_INET6) {
		/* Only global unicast (2000::/3) is public; everything else is
		 * loopback, unspecified, IPv4-compatible, NAT64 (which may reach
		 * private IPv4), unique local, link-local, site-local, multicast
		 * or reserved. */
		if ((a[0] & 0xe0) != 0x20)
			return false;
		if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) /* documentation */
			return false;
		if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 &&
		    a[3] == 0x00) /* Teredo: any IPv4 inside */
			return false;
		if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && (a[3] & 0xf0) == 0x10) /* ORCHID */
			return false;
		if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: judged by the IPv4 address inside */
			return webhook_addr_public(AF_INET, a + 2);
		if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0x00) /* documentation 3fff::/20 */
			return false;
		return true;
	}
	return false;
}

int webhook_check_url(const char *url, bool allow_private)
{
	size_t n = url ? strlen(url) : 0;
	bool http = false;
	const char *p;
	char host[256];
	uint8_t addr[16];
	if (n == 0 || n > LIMIT_WEBHOOK_URL_BYTES)
		return err_set(ERR_INVALID, "url must be 1 to %d bytes", LIMIT_WEBHOOK_URL_BYTES);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return err_set(ERR_INVALID, "url must be printable ASCII without spaces");
	if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
		http = true;
	} else {
		return err_set(ERR_INVALID, "url must be an https:// URL");
	}
	size_t alen = strcspn(p, "/?#");
	if (memchr(p, '@', alen) != NULL)
		return err_set(ERR_INVALID, "url must not hold credentials");
	size_t hlen;
	const char *h = p;
	if (alen > 0 && p[0] == '[') {
		const char *end = memchr(p, ']', alen);
		if (end == NULL)
			return err_set(ERR_INVALID, "url has an unclosed IPv6 address");
		h = p + 1;
		hlen = (size_t)(end - h);
	} else {
		const char *colon = memchr(p, ':', alen);
		hlen = colon ? (size_t)(colon - p) : alen;
	}
	if (hlen == 0 || hlen >= sizeof host)
		return err_set(ERR_INVALID, "url has no host");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	int family = 0;
	if (inet_pton(AF_INET, host, addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		family = AF_INET6;
	bool loopback = family != 0 ? webhook_addr_loopback(family, addr) : strcmp(host, "localhost") == 0;
	if (http && !(allow_private && loopback))
		return err_set(ERR_INVALID, "url must be an https:// URL");
	if (family != 0 && !allow_private && !webhook_addr_public(family, addr))
		return err_set(ERR_INVALID, "url names a loopback, private or reserved address; webhooks go "
					    "to public targets only");
	return 0;
}

/* ---- endpoints ---- */

static int copy_text(json_t *body, const char *key, char *out, size_t cap, bool required)
{
	json_t *v = json_object_get(body, key);
	if (v == NULL && !required) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= cap || json_string_length(v) == 0 ||
	    !is_clean_utf8(json_string_value(v), json_string_length(v)))
		return err_set(ERR_INVALID, "%s must be a string of 1 to %zu bytes", key, cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int webhook_parse(const struct txn *t, const struct webhook_settings *ws, json_t *body,
		  struct webhook_new *out)
{
	const char *k;
	json_t *v;
	int rc;
	memset(out, 0, sizeof *out);
	json_object_foreach (body, k, v)
		if (strcmp(k, "url") != 0 && strcmp(k, "events") != 0 && strcmp(k, "description") != 0 &&
		    strcmp(k, "role") != 0)
			return err_set(ERR_INVALID, "unknown member \"%.64s\"", k);
	if ((rc = copy_text(body, "url", out->url, sizeof out->url, true)) != 0 ||
	    (rc = webhook_check_url(out->url, ws->allow_private_targets)) != 0 ||
	    (rc = copy_text(body, "description", out->description, sizeof out->description, false)) != 0 ||
	    (rc = copy_text(body, "role", out->role, sizeof out->role, true)) != 0)
		return rc;
	if (!policy_role_exists(t->policy, out->role))
		return err_set(ERR_INVALID, "role names no role of the policy");
	json_t *ev = json_object_get(body, "events");
	size_t i, len = 0;
	if (!json_is_array(ev) || json_array_size(ev) == 0 || json_array_size(ev) > 4)
		return err_set(ERR_INVALID, "events must be a list of 1 to 4 event types");
	json_array_foreach (ev, i, v) {
		const char *name = json_string_value(v);
		if (!event_type_known(name))
			return err_set(ERR_INVALID,
				       "events[%zu] is not consent.changed, suppression.added, "
				       "suppression.lifted or contact.erased",
				       i);
		if (strstr(out->events, name) != NULL)
			continue; /* named twice: once is enough */
		len += (size_t)snprintf(out->events + len, sizeof out->events - len, "%s%s", len ? "," : "",
					name);
	}
	return 0;
}

int webhook_create(struct txn *t, const struct webhook_new *in, struct store_webhook *out,
		   char secret[WEBHOOK_SECRET_CAP])
{
	uint8_t raw[LIMIT_ID_RAW_BYTES], dek[FC_KEY_BYTES];
	int64_t n = 0;
	int rc;
	memset(out, 0, sizeof *out);
	if ((rc = store_webhooks_each(t->c, NULL, NULL, &n)) != 0)
		return rc;
	if (n >= LIMIT_WEBHOOK_ENDPOINTS)
		return err_set(ERR_CONFLICT, "at most %d webhook endpoints may exist",
			       LIMIT_WEBHOOK_ENDPOINTS);
	if ((rc = crypto_random(raw, sizeof raw)) != 0 || (rc = whsig_secret_new(secret)) != 0 ||
	    (rc = fieldcrypt_dek_new(dek)) != 0)
		goto out;
	b64url_encode(raw, sizeof raw, out->id);
	memcpy(out->url, in->url, sizeof out->url);
	memcpy(out->events, in->events, sizeof out->events);
	memcpy(out->description, in->description, sizeof out->description);
	memcpy(out->role, in->role, sizeof out->role);
	out->created_us = t->now_us;
	if ((rc = fieldcrypt_dek_wrap(t->keys, out->id, dek, out->wrapped_key, &out->key_version)) != 0 ||
	    (rc = fieldcrypt_seal(dek, "webhook", out->id, "secret", secret, strlen(secret), out->secret,
				  &out->secret_len)) != 0)
		goto out;
	out->wrapped_len = FC_WRAPPED_DEK_BYTES;
	rc = store_webhook_insert(t->c, out);
out:
	crypto_wipe(dek, sizeof dek);
	if (rc != 0)
		crypto_wipe(secret, WEBHOOK_SECRET_CAP);
	return rc;
}

int webhook_get(struct txn *t, const char *id, struct store_webhook *out)
{
	return store_webhook_get(t->c, id, out);
}

int webhook_delete(struct txn *t, const char *id)
{
	return store_webhook_delete(t->c, id, t->now_us);
}

json_t *webhook_to_json(const struct store_webhook *w)
{
	json_t *events = json_array();
	char buf[STORE_TEXT_CAP];
	snprintf(buf, sizeof buf, "%s", w->events);
	for (char *save = NULL, *e = strtok_r(buf, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save))
		json_array_append_new(events, json_string(e));
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:b, s:o, s:s}", "id", w->id, "url", w->url,
			 "events", events, "description", w->description, "role", w->role, "created_at",
			 json_time(w->created_us), "enabled", w->disabled_us == 0, "disabled_at",
			 w->disabled_us ? json_time(w->disabled_us) : json_null(), "disabled_reason",
			 w->disabled_reason);
}

static int list_cb(void *ctx, const struct store_webhook *w)
{
	return json_array_append_new(ctx, webhook_to_json(w)) == 0 ? 0 : err_set(ERR_NOMEM, "out of memory");
}

int webhook_list_json(struct txn *t, json_t **out)
{
	json_t *arr = json_array();
	int rc = arr ? store_webhooks_each(t->c, list_cb, arr, NULL) : err_set(ERR_NOMEM, "out of memory");
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int delivery_cb(void *ctx, const struct store_delivery *d)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:I, s:s}", "id", d->id, "type", d->type,
			      "state", d->state, "attempts", (json_int_t)d->attempts, "created_at",
			      json_time(d->created_us), "next_attempt_at",
			      strcmp(d->state, "pending") == 0 ? json_time(d->next_us) : json_null(),
			      "last_attempt_at", d->last_us ? json_time(d->last_us) : json_null(),
			      "last_status", (json_int_t)d->last_status, "last_error", d->last_error);
	return json_array_append_new(ctx, o) == 0 ? 0 : err_set(ERR_NOMEM, "out of memory");
}

int webhook_deliveries_json(struct txn *t, const char *id, json_t **out)
{
	struct store_webhook w;
	int rc = store_webhook_get(t->c, id, &w);
	crypto_wipe(&w, sizeof w);
	if (rc != 0)
		return rc;
	json_t *arr = json_array();
	rc = arr ? store_deliveries_each(t->c, id, LIMIT_WEBHOOK_LIST, delivery_cb, arr)
		 : err_set(ERR_NOMEM, "out of memory");
	if (rc != 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

int webhook_retry(struct txn *t, const char *id, const char *delivery_id)
{
	struct store_webhook w;
	int rc = store_webhook_get(t->c, id, &w);
	bool disabled = rc == 0 && w.disabled_us != 0;
	crypto_wipe(&w, sizeof w);
	if (rc != 0)
		return rc;
	if (disabled)
		return err_set(ERR_CONFLICT,
			       "the endpoint is disabled (it answered 410 Gone); create it again");
	return store_delivery_retry(t->c, id, delivery_id, t->now_us);
}

/* ---- the worker's side ---- */

int webhook_due(struct txn *t, int limit, store_delivery_cb cb, void *ctx)
{
	return store_deliveries_due(t->c, t->now_us, limit, cb, ctx);
}

int webhook_sign(struct txn *t, const struct store_webhook *w, const char *id, int64_t timestamp,
		 const char *body, char out[WEBHOOK_SIG_CAP])
{
	uint8_t dek[FC_KEY_BYTES], key[WHSIG_KEY_MAX];
	char secret[WHSIG_SECRET_CAP];
	size_t n = 0, klen = 0;
	int rc;
	if (w->secret_len < FC_SEAL_OVERHEAD || w->secret_len - FC_SEAL_OVERHEAD >= sizeof secret)
		return err_set(ERR_CRYPTO, "the endpoint's sealed secret has the wrong size");
	if ((rc = fieldcrypt_dek_unwrap(t->keys, w->id, w->key_version, w->wrapped_key, w->wrapped_len,
					dek)) != 0)
		goto out;
	if ((rc = fieldcrypt_open(dek, "webhook", w->id, "secret", w->secret, w->secret_len,
				  (uint8_t *)secret, &n)) != 0)
		goto out;
	secret[n] = '\0';
	if ((rc = whsig_secret_key(secret, key, &klen)) != 0)
		goto out;
	rc = whsig_sign(key, klen, id, timestamp, body, strlen(body), out);
out:
	crypto_wipe(dek, sizeof dek);
	crypto_wipe(key, sizeof key);
	crypto_wipe(secret, sizeof secret);
	return rc;
}

int webhook_body(struct txn *t, const struct store_webhook *w, const struct store_delivery *d, char **out)
{
	struct store_contact ct;
	struct policy_field_info f;
	uint8_t dek[FC_KEY_BYTES];
	json_t *body = NULL, *vals = NULL, *v;
	const char *k;
	int rc = 0;
	*out = NULL;
	if (d->personal_len == 0 || d->contact_id[0] == '\0')
		goto plain;
	if ((body = json_loads(d->body, 0, NULL)) == NULL) {
		rc = err_set(ERR_IO, "a stored webhook body is not JSON");
		goto out;
	}
	json_t *data = json_object_get(body, "data");
	uint64_t mask = event_personal_fields(t->policy, w->role,
					      json_string_value(json_object_get(data, "purpose")));
	if (mask == 0)
		goto plain;
	rc = store_contact_get(t->c, d->contact_id, &ct);
	if (rc == ERR_NOTFOUND || (rc == 0 && ct.erased)) {
		rc = 0;
		goto plain; /* erased meanwhile: its values are gone, and stay out */
	}
	if (rc != 0 || (rc = record_unwrap(t->keys, &ct, dek)) != 0)
		goto out;
	rc = record_open(dek, "outbox", d->contact_id, "personal", d->personal, d->personal_len, &vals);
	crypto_wipe(dek, sizeof dek);
	if (rc != 0)
		goto out;
	json_object_foreach (vals, k, v)
		if (policy_field_get(t->policy, k, &f) == 0 && (mask & (UINT64_C(1) << f.index)))
			json_object_set(data, k, v);
	*out = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (*out == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
	else if (strlen(*out) > LIMIT_WEBHOOK_BODY_BYTES)
		rc = err_set(ERR_TOOBIG, "a webhook event body is at most %d bytes",
			     LIMIT_WEBHOOK_BODY_BYTES);
	goto out;
plain:
	if ((*out = strdup(d->body)) == NULL)
		rc = err_set(ERR_NOMEM, "out of memory");
out:
	if (rc != 0 && *out != NULL) {
		mem_wipe(*out, strlen(*out));
		free(*out);
		*out = NULL;
	}
	json_decref(vals);
	json_decref(body);
	return rc;
}

/* The wait before attempt number `attempts + 1`, with jitter. */
static int64_t backoff_us(const struct webhook_settings *ws, int64_t attempts)
{
	uint32_t r = 0;
	int64_t base = ws->retry_base_ms * 1000, cap = (int64_t)LIMIT_WEBHOOK_MAX_BACKOFF_SECONDS * 1000000;
	int64_t wait = base;
	for (int64_t i = 1; i < attempts && wait < cap; i++)
		wait *= 2;
	if (wait > cap)
		wait = cap;
	/* Jitter keeps endpoints that failed together from retrying together. */
	if (crypto_random(&r, sizeof r) != 0)
		r = 0;
	return wait / 2 + (int64_t)((double)wait * ((double)r / 4294967296.0));
}

int webhook_attempt_done(struct txn *t, const struct webhook_settings *ws, struct store_delivery *d,
			 long status, const char *error, enum webhook_outcome *out)
{
	d->attempts++;
	d->last_us = t->now_us;
	d->last_status = status;
	snprintf(d->last_error, sizeof d->last_error, "%s", error);
	if (status >= 200 && status < 300) {
		*out = WEBHOOK_DELIVERED;
		snprintf(d->state, sizeof d->state, "delivered");
		d->last_error[0] = '\0';
	} else if (status == 410) {
		/* The subscriber says the endpoint is gone for good. */
		*out = WEBHOOK_GONE;
		snprintf(d->state, sizeof d->state, "failed");
		snprintf(d->last_error, sizeof d->last_error, "410 Gone: endpoint disabled");
		int rc = store_delivery_record(t->c, d);
		return rc != 0 ? rc : store_webhook_disable(t->c, d->endpoint_id, t->now_us, "gone");
	} else {
		d->next_us = t->now_us + backoff_us(ws, d->attempts);
		if (d->next_us - d->created_us > ws->max_age_seconds * 1000000) {
			*out = WEBHOOK_DEAD;
			snprintf(d->state, sizeof d->state, "failed");
		} else {
			*out = WEBHOOK_RETRY;
			snprintf(d->state, sizeof d->state, "pending");
		}
	}
	return store_delivery_record(t->c, d);
}

int webhook_queue_stats(struct txn *t, int64_t *pending, int64_t *oldest_us)
{
	return store_outbox_stats(t->c, pending, oldest_us);
}
