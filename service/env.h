/*
 * env: what the background workers (service/mail.c, service/outbound.c)
 * need from the running service, as plain data and one callback, so that
 * they do not include service/app.h and the app does not sit in a cycle
 * with the workers it starts.
 *
 * The app fills one in app_open, inside struct app, before it starts a
 * worker; it outlives every worker (they are stopped in app_close before
 * the app is torn down). Everything in it is borrowed.
 */
#ifndef CONSENTD_ENV_H
#define CONSENTD_ENV_H

struct config;
struct keyring;
struct policy;
struct store;
struct writer;

#define ENV_INSTANCE_CAP 192

struct service_env {
	const struct config *cfg;
	struct store *store;
	struct writer *writer;
	/* The live keyring: swapped in place on a reload, so read it with
	 * atomic_load at each use. */
	struct keyring *_Atomic *keys;
	/* The live policy with a new reference (drop it with policy_unref). */
	struct policy *(*policy)(void *arg);
	void *policy_arg;
	/* Who this instance is when it claims outbox work in the shared
	 * database (store_mail_claim, store_webhook_claim): host, listen address
	 * and a hash of the data folder's path, the same after a restart (its
	 * claims are its own again at once). Fits: 63 + 64 + 30 bytes. */
	char instance[ENV_INSTANCE_CAP];
};

#endif
