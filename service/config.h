/*
 * config: the data directory's layout and DIR/consentd.conf (JSON).
 *
 * DIR/
 *   consentd.conf         listen address, threads, paths, public URL
 *   policy.json           the policy (docs/policy.md)
 *   consentd.db           SQLite, WAL mode (no plaintext personal data)
 *   keys/master-vN.key    master key versions (0600)
 *   keys/index.key        blind-index and suppression root key (0600)
 *   keys/audit-signing.pem      Ed25519 checkpoint key (0600)
 *   keys/audit-signing.pub.pem  its public half, for auditors
 *   audit-anchor.json     the latest signed checkpoint (outside the database)
 *   audit-anchor.json.d/  its last generations (audit/anchor.h)
 *   tls/cert.pem, tls/key.pem   development certificate (key 0600)
 *
 * Relative paths in the file are resolved against DIR.
 */
#ifndef CONSENTD_CONFIG_H
#define CONSENTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/base/limits.h"
#include "service/domain/provider.h"
#include "service/domain/webhook.h"

#define CONFIG_PATH_CAP LIMIT_FILE_PATH_CAP
/* Where `init` and a config without "listen" serve: loopback only. */
#define CONFIG_DEFAULT_LISTEN "127.0.0.1:8443"
#define CONFIG_ORG_CAP 256 /* one organisation detail, with its NUL */

/* "events": the inbound providers; a path "" leaves its provider
 * unconfigured (its route answers 404). */
struct config_events {
	char sendgrid_key[CONFIG_PATH_CAP];	/* events.sendgrid.public_key_file */
	char mailgun_key[CONFIG_PATH_CAP];	/* events.mailgun.signing_key_file */
	char postmark_auth[CONFIG_PATH_CAP];	/* events.postmark.basic_auth_file */
	struct provider_groups sendgrid_groups; /* events.sendgrid.group_purposes */
	struct provider_ses ses;		/* events.ses: topic_arns, cert_host_suffix */
	/* events.ses.ca_file: the CA that certificate and confirmation fetches
	 * trust instead of the system's, and loopback admitted; a test
	 * setting, refused unless CONSENTD_TEST_FAULTS=1. "" when not set. */
	char ses_ca_file[CONFIG_PATH_CAP];
};

struct config {
	char dir[CONFIG_PATH_CAP];
	char address[64];
	uint16_t port;
	unsigned threads;
	unsigned audit_verify_every; /* seconds between scheduled verifications; 0: none */
	char policy[CONFIG_PATH_CAP];
	char database[CONFIG_PATH_CAP];
	char keys_dir[CONFIG_PATH_CAP];
	char signing_key[CONFIG_PATH_CAP];
	char signing_pub[CONFIG_PATH_CAP];
	char audit_anchor[CONFIG_PATH_CAP]; /* the latest signed checkpoint, outside the DB */
	char tls_cert[CONFIG_PATH_CAP];
	char tls_key[CONFIG_PATH_CAP];
	char public_url[512];
	bool public_url_given; /* else derived from the listen address */
	bool allow_core_dumps; /* "allow_core_dumps": true; off by default (keys in memory) */
	/* "database_pool": the most PostgreSQL connections this instance opens,
	 * the writer's included (LIMIT_PG_POOL_MIN..MAX; 0: LIMIT_PG_CONNS). */
	int database_pool;
	bool log_json; /* "log_format": "json" (one object a line) or "text" (the default) */
	struct config_events events;
	/* "mail": {"dir": D}: messages are written as D/<id>.eml (default
	 * DIR/mail-outbox; "" when a relay is configured). Or "mail":
	 * {"smtp_url", "from", "starttls", "ca_file", "retry_base_ms"}: sent
	 * through that relay (service/mail.c, docs/operations.md). */
	char mail_dir[CONFIG_PATH_CAP];
	struct config_mail {
		char smtp_url[CONFIG_PATH_CAP]; /* smtp:// or smtps://; "" for the folder */
		char from[CONFIG_ORG_CAP];	/* the envelope and From: address */
		enum config_starttls {
			CONFIG_STARTTLS_REQUIRED, /* the default: no TLS, no mail */
			CONFIG_STARTTLS_OPTIONAL,
			CONFIG_STARTTLS_NONE /* accepted for a loopback relay only */
		} starttls;
		char ca_file[CONFIG_PATH_CAP]; /* the relay's CA bundle; "" for the system's */
		int64_t retry_base_ms;	       /* first retry after this; doubles each time */
	} mail;
	/* "organisation": who the customer pages and mail speak for. Every
	 * field is optional ("" when absent) and shown as written. */
	struct config_org {
		char name[CONFIG_ORG_CAP];
		char postal_address[CONFIG_ORG_CAP];
		char privacy_policy_url[CONFIG_ORG_CAP]; /* https:// only */
		char contact_email[CONFIG_ORG_CAP];
		/* The jurisdiction consent receipts name (e.g. "EU", "US-CA"). */
		char jurisdiction[CONFIG_ORG_CAP];
	} org;
	/* "webhooks": {"allow_private_targets", "retry_base_ms",
	 * "max_age_seconds"}: outbound delivery (docs/integrations.md). */
	struct webhook_settings webhooks;
};

/* Reads DIR/consentd.conf. Unknown keys are an error. */
int config_load(struct config *cfg, const char *dir);
/* Parses "ADDR:PORT" or "[ADDR6]:PORT". */
int config_parse_listen(const char *s, char *addr, size_t cap, uint16_t *port);
/* Sets public_url from the listen address and the given (bound) port. */
void config_default_public_url(struct config *cfg, uint16_t port);
/* The same with another `database` setting: a file path (SQLite) or a
 * postgresql:// URI (libpq conninfo). */
int config_write_default_db(const char *dir, const char *listen, const char *database);

#endif
