/*
 * config: loading and writing DIR/consentd.conf. The file is JSON so that
 * the same strict parser (unknown keys refused) serves it and the API.
 */
#include "service/config.h"

#include "service/base/error.h"
#include "service/base/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Joins dir and path (unless path is absolute) into out. A path that does
 * not fit is an error naming the key: cut short, it could name another
 * file that exists (DIR/././policy.json for DIR/././policy.json.new). */
static int resolve(char *out, const char *dir, const char *path, const char *key)
{
	/* A URI (the database setting's postgresql://...) is no path: it is kept
	 * as written, so the store can tell which backend it names. */
	bool as_is = path[0] == '/' || strstr(path, "://") != NULL;
	int n = as_is ? snprintf(out, CONFIG_PATH_CAP, "%s", path)
		      : snprintf(out, CONFIG_PATH_CAP, "%s/%s", dir, path);
	if (n < 0 || n >= CONFIG_PATH_CAP) {
		out[0] = '\0';
		return err_set(ERR_INVALID,
			       "consentd.conf: the %s path is longer than %d bytes once resolved", key,
			       CONFIG_PATH_CAP - 1);
	}
	return 0;
}

int config_parse_listen(const char *s, char *addr, size_t cap, uint16_t *port)
{
	const char *colon;
	size_t alen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return err_set(ERR_INVALID, "listen address %s: expected [ADDR]:PORT", s);
		s++;
		alen = (size_t)(close - s);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return err_set(ERR_INVALID, "listen address %s: expected ADDR:PORT", s);
		alen = (size_t)(colon - s);
	}
	if (alen == 0 || alen >= cap)
		return err_set(ERR_INVALID, "listen address %s: bad address", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 0 || p > 65535 || end == colon + 1)
		return err_set(ERR_INVALID, "listen address %s: bad port", s);
	*port = (uint16_t)p;
	return 0;
}

/* One provider's object: exactly the file key (resolved into out), plus
 * group_purposes for SendGrid. */
static int events_provider(json_t *o, const char *dir, const char *path, const char *name,
			   const char *file_key, char *out, struct provider_groups *groups)
{
	const char *k;
	json_t *v;
	if (!json_is_object(o))
		return err_set(ERR_INVALID, "%s: events.%s must be an object", path, name);
	json_object_foreach (o, k, v) {
		if (strcmp(k, file_key) == 0) {
			if (!json_is_string(v) || json_string_length(v) == 0)
				return err_set(ERR_INVALID, "%s: events.%s.%s must be a file name", path,
					       name, k);
			int rc = resolve(out, dir, json_string_value(v), file_key);
			if (rc != 0)
				return rc;
		} else if (groups != NULL && strcmp(k, "group_purposes") == 0) {
			const char *g;
			json_t *pv;
			if (!json_is_object(v) || json_object_size(v) > LIMIT_EVENT_GROUPS)
				return err_set(ERR_INVALID,
					       "%s: events.%s.group_purposes must be an object of at most "
					       "%d group ids to purpose names",
					       path, name, LIMIT_EVENT_GROUPS);
			json_object_foreach (v, g, pv) {
				const char *pn = json_string_value(pv);
				bool digits = g[0] != '\0' && strspn(g, "0123456789") == strlen(g);
				if (!digits || strlen(g) >= sizeof groups->map[0].group || pn == NULL ||
				    strlen(pn) == 0 || strlen(pn) >= sizeof groups->map[0].purpose)
					return err_set(ERR_INVALID,
						       "%s: events.%s.group_purposes maps a numeric group "
						       "id to a purpose name (\"%s\")",
						       path, name, g);
				snprintf(groups->map[groups->n].group, sizeof groups->map[0].group, "%s", g);
				snprintf(groups->map[groups->n].purpose, sizeof groups->map[0].purpose, "%s",
					 pn);
				groups->n++;
			}
		} else {
			return err_set(ERR_INVALID, "%s: unknown key \"events.%s.%s\"", path, name, k);
		}
	}
	if (out[0] == '\0')
		return err_set(ERR_INVALID, "%s: events.%s needs %s", path, name, file_key);
	return 0;
}

static int events_load(json_t *v, struct config *cfg, const char *dir, const char *path)
{
	const char *k;
	json_t *o;
	struct config_events *ev = &cfg->events;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: events must be an object", path);
	json_object_foreach (v, k, o) {
		int rc;
		if (strcmp(k, "sendgrid") == 0)
			rc = events_provider(o, dir, path, k, "public_key_file", ev->sendgrid_key,
					     &ev->sendgrid_groups);
		else if (strcmp(k, "mailgun") == 0)
			rc = events_provider(o, dir, path, k, "signing_key_file", ev->mailgun_key, NULL);
		else if (strcmp(k, "postmark") == 0)
			rc = events_provider(o, dir, path, k, "basic_auth_file", ev->postmark_auth, NULL);
		else if (strcmp(k, "ses") == 0)
			/* Refused rather than ignored: an operator who configures SES
			 * must not believe its bounces are being taken in. */
			rc = err_set(ERR_INVALID, "%s: events.ses is not supported by this consentd yet",
				     path);
		else
			rc = err_set(ERR_INVALID, "%s: unknown key \"events.%s\"", path, k);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* "mail": {"dir": D}. The SMTP form ("smtp_url", "from", "starttls") is
 * refused by name rather than accepted and ignored: a deployment that asks
 * for a relay must not silently get files instead. */
static int parse_mail(json_t *v, const char *path, const char **dir)
{
	const char *k;
	json_t *m;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: mail must be an object such as {\"dir\": \"mail-outbox\"}",
			       path);
	json_object_foreach (v, k, m) {
		if (strcmp(k, "smtp_url") == 0 || strcmp(k, "from") == 0 || strcmp(k, "starttls") == 0)
			return err_set(ERR_INVALID,
				       "%s: mail.%s: SMTP delivery is not built into this consentd yet; "
				       "use {\"dir\": ...}",
				       path, k);
		if (strcmp(k, "dir") != 0)
			return err_set(ERR_INVALID, "%s: mail: unknown key \"%s\"", path, k);
		if (!json_is_string(m) || json_string_value(m)[0] == '\0')
			return err_set(ERR_INVALID, "%s: mail.dir must be a non-empty string", path);
		*dir = json_string_value(m);
	}
	return 0;
}

/* "organisation": {"name", "postal_address", "privacy_policy_url",
 * "contact_email"}, each an optional string of printable text (a postal
 * address may hold line breaks). A value that does not fit is refused, not
 * cut: a cut address or URL would send people to the wrong place. */
static int parse_org(json_t *v, const char *path, struct config_org *org)
{
	static const struct {
		const char *key;
		size_t off;
	} fields[] = {
		{ "name", offsetof(struct config_org, name) },
		{ "postal_address", offsetof(struct config_org, postal_address) },
		{ "privacy_policy_url", offsetof(struct config_org, privacy_policy_url) },
		{ "contact_email", offsetof(struct config_org, contact_email) },
	};
	const char *k;
	json_t *m;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: organisation must be an object", path);
	json_object_foreach (v, k, m) {
		size_t i = 0;
		while (i < sizeof fields / sizeof fields[0] && strcmp(fields[i].key, k) != 0)
			i++;
		if (i == sizeof fields / sizeof fields[0])
			return err_set(ERR_INVALID, "%s: organisation: unknown key \"%s\"", path, k);
		const char *s = json_string_value(m);
		if (s == NULL || strlen(s) >= CONFIG_ORG_CAP)
			return err_set(ERR_INVALID,
				       "%s: organisation.%s must be a string of at most %d bytes", path, k,
				       CONFIG_ORG_CAP - 1);
		for (const char *c = s; *c; c++)
			if (((unsigned char)*c < 0x20 && !(*c == '\n' && i == 1)) || *c == 0x7f)
				return err_set(ERR_INVALID, "%s: organisation.%s holds a control character",
					       path, k);
		if (i == 2 && strncmp(s, "https://", 8) != 0)
			return err_set(ERR_INVALID,
				       "%s: organisation.privacy_policy_url must start with https://", path);
		if (i == 3 && (strchr(s, '@') == NULL || strpbrk(s, " <>\"") != NULL))
			return err_set(ERR_INVALID, "%s: organisation.contact_email must be an email address",
				       path);
		snprintf((char *)org + fields[i].off, CONFIG_ORG_CAP, "%s", s);
	}
	return 0;
}

/* "webhooks": outbound delivery settings. The defaults retry for three
 * days, the first retry after 30 seconds; tests set a tiny base. */
static int webhooks_load(json_t *v, struct webhook_settings *ws, const char *path)
{
	const char *k;
	json_t *o;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: webhooks must be an object", path);
	json_object_foreach (v, k, o) {
		if (strcmp(k, "allow_private_targets") == 0) {
			if (!json_is_boolean(o))
				return err_set(ERR_INVALID,
					       "%s: webhooks.allow_private_targets must be true or false",
					       path);
			ws->allow_private_targets = json_is_true(o);
		} else if (strcmp(k, "retry_base_ms") == 0) {
			if (!json_is_integer(o) || json_integer_value(o) < 1 ||
			    json_integer_value(o) > 3600000)
				return err_set(ERR_INVALID,
					       "%s: webhooks.retry_base_ms must be an integer 1..3600000",
					       path);
			ws->retry_base_ms = json_integer_value(o);
		} else if (strcmp(k, "max_age_seconds") == 0) {
			if (!json_is_integer(o) || json_integer_value(o) < 1 ||
			    json_integer_value(o) > 30 * 24 * 3600)
				return err_set(ERR_INVALID,
					       "%s: webhooks.max_age_seconds must be an integer 1..2592000",
					       path);
			ws->max_age_seconds = json_integer_value(o);
		} else {
			return err_set(ERR_INVALID, "%s: unknown key \"webhooks.%s\"", path, k);
		}
	}
	return 0;
}

int config_load(struct config *cfg, const char *dir)
{
	char path[CONFIG_PATH_CAP + 32];
	json_error_t jerr;
	json_t *root = NULL;
	int rc = 0;

	memset(cfg, 0, sizeof *cfg);
	cfg->webhooks.retry_base_ms = 30000;
	cfg->webhooks.max_age_seconds = 3 * 24 * 3600;
	if (strlen(dir) >= sizeof cfg->dir - 32)
		return err_set(ERR_INVALID, "the data directory path is longer than %zu bytes",
			       sizeof cfg->dir - 33);
	snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
	snprintf(path, sizeof path, "%s/consentd.conf", dir);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		if (access(path, F_OK) != 0)
			return err_set(ERR_NOTFOUND, "%s is missing; run: consentd init --data %s", path,
				       dir);
		return err_set(ERR_INVALID, "%s:%d: %s", path, jerr.line, jerr.text);
	}
	const char *listen = "127.0.0.1:8443", *policy = "policy.json", *db = "consentd.db", *keys = "keys",
		   *cert = "tls/cert.pem", *key = "tls/key.pem", *url = NULL, *mail_dir = "mail-outbox";
	json_int_t threads = 0, verify_every = AUDIT_VERIFY_EVERY_SECONDS;
	const char *k;
	json_t *v;
	json_object_foreach (root, k, v) {
		const char **target = NULL;
		if (strcmp(k, "listen") == 0)
			target = &listen;
		else if (strcmp(k, "policy") == 0)
			target = &policy;
		else if (strcmp(k, "database") == 0)
			target = &db;
		else if (strcmp(k, "keys_dir") == 0)
			target = &keys;
		else if (strcmp(k, "tls_cert") == 0)
			target = &cert;
		else if (strcmp(k, "tls_key") == 0)
			target = &key;
		else if (strcmp(k, "public_url") == 0)
			target = &url;
		else if (strcmp(k, "threads") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 64) {
				rc = err_set(ERR_INVALID, "%s: threads must be an integer 0..64", path);
				goto out;
			}
			threads = json_integer_value(v);
			continue;
		} else if (strcmp(k, "audit_verify_interval_seconds") == 0) {
			/* 0 turns the schedule off (verification at start still runs). */
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 7 * 24 * 3600) {
				rc = err_set(ERR_INVALID,
					     "%s: audit_verify_interval_seconds must be an "
					     "integer 0..604800",
					     path);
				goto out;
			}
			verify_every = json_integer_value(v);
			continue;
		} else if (strcmp(k, "events") == 0) {
			if ((rc = events_load(v, cfg, dir, path)) != 0)
				goto out;
			continue;
		} else if (strcmp(k, "webhooks") == 0) {
			if ((rc = webhooks_load(v, &cfg->webhooks, path)) != 0)
				goto out;
			continue;
		} else if (strcmp(k, "database_pool") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < LIMIT_PG_POOL_MIN ||
			    json_integer_value(v) > LIMIT_PG_POOL_MAX) {
				rc = err_set(ERR_INVALID, "%s: database_pool must be an integer %d..%d", path,
					     LIMIT_PG_POOL_MIN, LIMIT_PG_POOL_MAX);
				goto out;
			}
			cfg->database_pool = (int)json_integer_value(v);
			continue;
		} else if (strcmp(k, "log_format") == 0) {
			const char *f = json_string_value(v);
			if (f == NULL || (strcmp(f, "text") != 0 && strcmp(f, "json") != 0)) {
				rc = err_set(ERR_INVALID, "%s: log_format must be \"text\" or \"json\"",
					     path);
				goto out;
			}
			cfg->log_json = strcmp(f, "json") == 0;
			continue;
		} else if (strcmp(k, "allow_core_dumps") == 0) {
			if (!json_is_boolean(v)) {
				rc = err_set(ERR_INVALID, "%s: allow_core_dumps must be true or false", path);
				goto out;
			}
			cfg->allow_core_dumps = json_is_true(v);
			continue;
		} else if (strcmp(k, "organisation") == 0) {
			if ((rc = parse_org(v, path, &cfg->org)) != 0)
				goto out;
			continue;
		} else if (strcmp(k, "mail") == 0) {
			if ((rc = parse_mail(v, path, &mail_dir)) != 0)
				goto out;
			continue;
		} else {
			rc = err_set(ERR_INVALID, "%s: unknown key \"%s\"", path, k);
			goto out;
		}
		if (!json_is_string(v)) {
			rc = err_set(ERR_INVALID, "%s: %s must be a string", path, k);
			goto out;
		}
		*target = json_string_value(v);
	}
	if ((rc = config_parse_listen(listen, cfg->address, sizeof cfg->address, &cfg->port)) != 0)
		goto out;
	/* One worker per core this process may run on (taskset, cgroups), not
	 * per core the machine has. */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		ncpu = CPU_COUNT(&set);
	cfg->threads = threads > 0 ? (unsigned)threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	cfg->audit_verify_every = (unsigned)verify_every;
	if ((rc = resolve(cfg->policy, dir, policy, "policy")) != 0 ||
	    (rc = resolve(cfg->database, dir, db, "database")) != 0 ||
	    (rc = resolve(cfg->keys_dir, dir, keys, "keys_dir")) != 0 ||
	    (rc = resolve(cfg->tls_cert, dir, cert, "tls_cert")) != 0 ||
	    (rc = resolve(cfg->tls_key, dir, key, "tls_key")) != 0 ||
	    (rc = resolve(cfg->signing_key, cfg->keys_dir, "audit-signing.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->signing_pub, cfg->keys_dir, "audit-signing.pub.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->audit_anchor, dir, "audit-anchor.json", "data directory")) != 0 ||
	    (rc = resolve(cfg->mail_dir, dir, mail_dir, "mail.dir")) != 0)
		goto out;
	cfg->public_url_given = url != NULL;
	if (url != NULL && strlen(url) >= sizeof cfg->public_url) {
		rc = err_set(ERR_INVALID, "%s: public_url is longer than %zu bytes", path,
			     sizeof cfg->public_url - 1);
		goto out;
	}
	if (url != NULL)
		snprintf(cfg->public_url, sizeof cfg->public_url, "%s", url);
	else
		config_default_public_url(cfg, cfg->port);
out:
	json_decref(root);
	return rc;
}

void config_default_public_url(struct config *cfg, uint16_t port)
{
	if (strchr(cfg->address, ':') != NULL)
		snprintf(cfg->public_url, sizeof cfg->public_url, "https://[%s]:%u", cfg->address, port);
	else
		snprintf(cfg->public_url, sizeof cfg->public_url, "https://%s:%u",
			 strcmp(cfg->address, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->address, port);
}

int config_write_default(const char *dir, const char *listen)
{
	return config_write_default_db(dir, listen, "consentd.db");
}

int config_write_default_db(const char *dir, const char *listen, const char *database)
{
	char path[CONFIG_PATH_CAP + 32];
	snprintf(path, sizeof path, "%s/consentd.conf", dir);
	json_t *root = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "listen", listen, "threads", 0,
				 "policy", "policy.json", "database", database, "keys_dir", "keys",
				 "tls_cert", "tls/cert.pem", "tls_key", "tls/key.pem");
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = err_set(ERR_IO, "cannot create %s: %s", path, strerror(errno));
	} else {
		size_t n = strlen(text);
		if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
			rc = err_set(ERR_IO, "cannot write %s: %s", path, strerror(errno));
		close(fd);
	}
	free(text);
	return rc;
}
