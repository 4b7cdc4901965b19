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
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
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

/* "ses": {"topic_arns": [...], "cert_host_suffix": S, "ca_file": F}. */
static int events_ses(json_t *o, const char *dir, const char *path, struct config_events *ev)
{
	struct provider_ses *ses = &ev->ses;
	const char *k, *hooks = getenv("CONSENTD_TEST_FAULTS");
	json_t *v;
	if (!json_is_object(o))
		return err_set(ERR_INVALID, "%s: events.ses must be an object", path);
	snprintf(ses->cert_host_suffix, sizeof ses->cert_host_suffix, ".amazonaws.com");
	json_object_foreach (o, k, v) {
		if (strcmp(k, "topic_arns") == 0) {
			size_t i;
			json_t *t;
			if (!json_is_array(v) || json_array_size(v) == 0 ||
			    json_array_size(v) > LIMIT_SES_TOPICS)
				return err_set(ERR_INVALID,
					       "%s: events.ses.topic_arns must list 1 to %d topic ARNs", path,
					       LIMIT_SES_TOPICS);
			json_array_foreach (v, i, t) {
				const char *arn = json_string_value(t);
				if (arn == NULL || strncmp(arn, "arn:", 4) != 0 ||
				    strlen(arn) >= sizeof ses->topics[0] || strpbrk(arn, " \t\r\n") != NULL)
					return err_set(ERR_INVALID,
						       "%s: events.ses.topic_arns[%zu] must be a topic ARN "
						       "(arn:aws:sns:REGION:ACCOUNT:NAME)",
						       path, i);
				snprintf(ses->topics[i], sizeof ses->topics[i], "%s", arn);
			}
			ses->n_topics = json_array_size(v);
		} else if (strcmp(k, "cert_host_suffix") == 0) {
			const char *sfx = json_string_value(v);
			const char *bare = sfx && sfx[0] == '.' ? sfx + 1 : sfx;
			if (sfx == NULL || strlen(bare) < 3 || strlen(sfx) >= sizeof ses->cert_host_suffix ||
			    strspn(sfx, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(sfx))
				return err_set(
					ERR_INVALID,
					"%s: events.ses.cert_host_suffix must be a lower-case host name "
					"suffix such as .amazonaws.com",
					path);
			snprintf(ses->cert_host_suffix, sizeof ses->cert_host_suffix, "%s", sfx);
		} else if (strcmp(k, "ca_file") == 0) {
			/* Trusting another CA (and loopback) is for the test suite's
			 * own certificate server only: never in production. */
			if (hooks == NULL || strcmp(hooks, "1") != 0)
				return err_set(ERR_INVALID,
					       "%s: events.ses.ca_file is a test setting, honoured only with "
					       "CONSENTD_TEST_FAULTS=1",
					       path);
			if (!json_is_string(v) || json_string_length(v) == 0)
				return err_set(ERR_INVALID, "%s: events.ses.ca_file must be a file name",
					       path);
			int rc = resolve(ev->ses_ca_file, dir, json_string_value(v), "ca_file");
			if (rc != 0)
				return rc;
		} else {
			return err_set(ERR_INVALID, "%s: unknown key \"events.ses.%s\"", path, k);
		}
	}
	if (ses->n_topics == 0)
		return err_set(ERR_INVALID, "%s: events.ses needs topic_arns", path);
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
			rc = events_ses(o, dir, path, ev);
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
/* True when the host of an smtp:// URL is a loopback name or address: the
 * only relay consentd may talk to without TLS (the mail then never leaves
 * the machine). */
static bool smtp_host_is_loopback(const char *url)
{
	const char *h = strstr(url, "://");
	char host[256];
	size_t n = 0;
	if (h == NULL)
		return false;
	h += 3;
	const char *at = strpbrk(h, "@/");
	if (at != NULL && *at == '@')
		h = at + 1; /* user:password@ */
	if (*h == '[') {
		for (h++; *h && *h != ']' && n + 1 < sizeof host; h++)
			host[n++] = *h;
	} else {
		for (; *h && *h != ':' && *h != '/' && n + 1 < sizeof host; h++)
			host[n++] = *h;
	}
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return true;
	struct in_addr a;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* A value that goes on a header line or into an SMTP command must not be
 * able to start another. */
static bool mail_text_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || *s == '<' || *s == '>')
			return false;
	return true;
}

/* "mail": {"dir": D} (the development default) or {"smtp_url": U, "from":
 * A, "starttls": "required" | "optional" | "none", "ca_file": F,
 * "retry_base_ms": N}. */
static int parse_mail(json_t *v, const char *path, const char **dir, const char **ca_file,
		      struct config_mail *mail)
{
	const char *k;
	json_t *m;
	bool starttls_given = false;
	if (!json_is_object(v))
		return err_set(ERR_INVALID, "%s: mail must be an object such as {\"dir\": \"mail-outbox\"}",
			       path);
	json_object_foreach (v, k, m) {
		if (strcmp(k, "retry_base_ms") == 0) {
			if (!json_is_integer(m) || json_integer_value(m) < 1 ||
			    json_integer_value(m) > 3600000)
				return err_set(ERR_INVALID,
					       "%s: mail.retry_base_ms must be an integer 1..3600000", path);
			mail->retry_base_ms = json_integer_value(m);
			continue;
		}
		if (!json_is_string(m) || json_string_value(m)[0] == '\0')
			return err_set(ERR_INVALID, "%s: mail.%s must be a non-empty string", path, k);
		const char *s = json_string_value(m);
		if (strcmp(k, "dir") == 0) {
			*dir = s;
		} else if (strcmp(k, "smtp_url") == 0) {
			if (strncasecmp(s, "smtp://", 7) != 0 && strncasecmp(s, "smtps://", 8) != 0)
				return err_set(ERR_INVALID,
					       "%s: mail.smtp_url must start with smtp:// or smtps://", path);
			if (strlen(s) >= sizeof mail->smtp_url || !mail_text_safe(s))
				return err_set(ERR_INVALID, "%s: mail.smtp_url is not a usable URL", path);
			snprintf(mail->smtp_url, sizeof mail->smtp_url, "%s", s);
		} else if (strcmp(k, "from") == 0) {
			if (strlen(s) >= sizeof mail->from || !mail_text_safe(s) || strchr(s, '@') == NULL)
				return err_set(ERR_INVALID,
					       "%s: mail.from must be one address such as "
					       "privacy@example.com",
					       path);
			snprintf(mail->from, sizeof mail->from, "%s", s);
		} else if (strcmp(k, "starttls") == 0) {
			if (strcmp(s, "required") == 0)
				mail->starttls = CONFIG_STARTTLS_REQUIRED;
			else if (strcmp(s, "optional") == 0)
				mail->starttls = CONFIG_STARTTLS_OPTIONAL;
			else if (strcmp(s, "none") == 0)
				mail->starttls = CONFIG_STARTTLS_NONE;
			else
				return err_set(
					ERR_INVALID,
					"%s: mail.starttls must be \"required\", \"optional\" or \"none\"",
					path);
			starttls_given = true;
		} else if (strcmp(k, "ca_file") == 0) {
			*ca_file = s;
		} else {
			return err_set(ERR_INVALID, "%s: mail: unknown key \"%s\"", path, k);
		}
	}
	if (mail->smtp_url[0] == '\0') {
		if (mail->from[0] != '\0' || starttls_given || *ca_file != NULL)
			return err_set(ERR_INVALID,
				       "%s: mail.from, mail.starttls and mail.ca_file need "
				       "mail.smtp_url",
				       path);
		return 0;
	}
	if (*dir != NULL)
		return err_set(ERR_INVALID, "%s: mail: give either dir or smtp_url, not both", path);
	if (mail->from[0] == '\0')
		return err_set(ERR_INVALID, "%s: mail.from is required with mail.smtp_url", path);
	/* Without TLS the mail, with its personal link, would cross the network
	 * in the clear: only a relay on this machine may be spoken to so. */
	if (mail->starttls == CONFIG_STARTTLS_NONE && !smtp_host_is_loopback(mail->smtp_url))
		return err_set(ERR_INVALID,
			       "%s: mail.starttls \"none\" is accepted only for a loopback relay "
			       "(localhost, 127.0.0.0/8, ::1)",
			       path);
	return 0;
}

/* "organisation": {"name", "postal_address", "privacy_policy_url",
 * "contact_email", "jurisdiction"}, each an optional string of printable text (a postal
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
		{ "jurisdiction", offsetof(struct config_org, jurisdiction) },
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
			    json_integer_value(o) > LIMIT_WEBHOOK_RETRY_BASE_MS_MAX)
				return err_set(ERR_INVALID,
					       "%s: webhooks.retry_base_ms must be an integer 1..%d", path,
					       LIMIT_WEBHOOK_RETRY_BASE_MS_MAX);
			ws->retry_base_ms = json_integer_value(o);
		} else if (strcmp(k, "max_age_seconds") == 0) {
			if (!json_is_integer(o) || json_integer_value(o) < 1 ||
			    json_integer_value(o) > LIMIT_WEBHOOK_MAX_AGE_SECONDS_MAX)
				return err_set(ERR_INVALID,
					       "%s: webhooks.max_age_seconds must be an integer 1..%d", path,
					       LIMIT_WEBHOOK_MAX_AGE_SECONDS_MAX);
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
	cfg->webhooks.retry_base_ms = LIMIT_WEBHOOK_RETRY_BASE_MS_DEFAULT;
	cfg->webhooks.max_age_seconds = LIMIT_WEBHOOK_MAX_AGE_SECONDS_DEFAULT;
	cfg->mail.retry_base_ms = MAIL_RETRY_BASE_MS;
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
	const char *listen = CONFIG_DEFAULT_LISTEN, *policy = "policy.json", *db = "consentd.db",
		   *keys = "keys", *cert = "tls/cert.pem", *key = "tls/key.pem", *url = NULL,
		   *mail_dir = NULL, *mail_ca = NULL;
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
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > LIMIT_HTTP_THREADS) {
				rc = err_set(ERR_INVALID, "%s: threads must be an integer 0..%d", path,
					     LIMIT_HTTP_THREADS);
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
			if ((rc = parse_mail(v, path, &mail_dir, &mail_ca, &cfg->mail)) != 0)
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
	/* On PostgreSQL a check's reads wait for a round trip on the HTTP
	 * thread, so one thread per core leaves the core idle while it waits:
	 * the default is LIMIT_PG_THREADS_PER_CPU per core, but no more than
	 * the pool has reader connections (one is the writer's), so no thread
	 * waits for a connection. */
	if (threads == 0 && strstr(db, "://") != NULL) {
		unsigned readers =
			(unsigned)(cfg->database_pool > 0 ? cfg->database_pool : LIMIT_PG_CONNS) - 1;
		cfg->threads *= LIMIT_PG_THREADS_PER_CPU;
		if (cfg->threads > readers)
			cfg->threads = readers;
		if (cfg->threads > LIMIT_HTTP_THREADS)
			cfg->threads = LIMIT_HTTP_THREADS;
	}
	cfg->audit_verify_every = (unsigned)verify_every;
	if ((rc = resolve(cfg->policy, dir, policy, "policy")) != 0 ||
	    (rc = resolve(cfg->database, dir, db, "database")) != 0 ||
	    (rc = resolve(cfg->keys_dir, dir, keys, "keys_dir")) != 0 ||
	    (rc = resolve(cfg->tls_cert, dir, cert, "tls_cert")) != 0 ||
	    (rc = resolve(cfg->tls_key, dir, key, "tls_key")) != 0 ||
	    (rc = resolve(cfg->signing_key, cfg->keys_dir, "audit-signing.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->signing_pub, cfg->keys_dir, "audit-signing.pub.pem", "keys_dir")) != 0 ||
	    (rc = resolve(cfg->audit_anchor, dir, "audit-anchor.json", "data directory")) != 0 ||
	    (cfg->mail.smtp_url[0] == '\0' &&
	     (rc = resolve(cfg->mail_dir, dir, mail_dir != NULL ? mail_dir : "mail-outbox", "mail.dir")) !=
		     0) ||
	    (mail_ca != NULL && (rc = resolve(cfg->mail.ca_file, dir, mail_ca, "mail.ca_file")) != 0))
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
