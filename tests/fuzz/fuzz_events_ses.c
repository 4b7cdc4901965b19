/*
 * fuzz_events_ses: Amazon SNS messages through evparse_sns, and SES
 * notifications through evparse_ses (service/evparse.c), pure, no keys.
 * The input is tried both as an SNS message (and, when it parses, its
 * Message as the SES notification inside) and as an SES notification on
 * its own, so that the fuzzer reaches the inner parser directly.
 *
 * Invariants checked (abort on violation):
 * - every result is 0, ERR_INVALID or ERR_TOOBIG, set as the current error;
 * - an accepted SNS message has version 1 or 2, every text member
 *   NUL-terminated and non-empty (SubscribeURL exactly for confirmations),
 *   and a canonical string that starts with its Message, names its
 *   MessageId and ends with its Type;
 * - every accepted SES item satisfies check_item, and a suppressing or
 *   soft item's id is the message id, "|" and its index;
 * - a refused parse holds nothing (no message, no canonical string).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/base/error.h"
#include "service/evparse.h"
#include "support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct evp_item items[LIMIT_EVENT_BATCH];

static void check_ses(const char *msg, size_t len, const char *id)
{
	size_t n = 99999;
	err_clear();
	int rc = evparse_ses(msg, len, id, items, LIMIT_EVENT_BATCH, &n);
	fuzz_check_event_rc(rc);
	if (rc != 0) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > LIMIT_EVENT_BATCH)
		abort();
	for (size_t i = 0; i < n; i++) {
		char want[LIMIT_EVENT_ID_BYTES + 16];
		fuzz_check_event_item(&items[i]);
		snprintf(want, sizeof want, "%s|%zu", id, i);
		if (items[i].kind != EVP_IGNORED && strcmp(items[i].id, want) != 0)
			abort();
	}
}

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evp_sns m;
	char head[64];
	err_clear();
	int rc = evparse_sns((const char *)data, size, &m);
	fuzz_check_event_rc(rc);
	if (rc != 0) {
		if (m.message != NULL || m.canonical != NULL)
			abort();
	} else {
		static const char *const types[] = { "Notification", "SubscriptionConfirmation",
						     "UnsubscribeConfirmation" };
		if ((m.version != 1 && m.version != 2) || m.type > EVP_SNS_UNSUBSCRIBE ||
		    !terminated(m.message_id, sizeof m.message_id) ||
		    !terminated(m.topic_arn, sizeof m.topic_arn) ||
		    !terminated(m.signature, sizeof m.signature) ||
		    !terminated(m.cert_url, sizeof m.cert_url) ||
		    !terminated(m.subscribe_url, sizeof m.subscribe_url) || m.message_id[0] == '\0' ||
		    m.topic_arn[0] == '\0' || m.signature[0] == '\0' || m.cert_url[0] == '\0' ||
		    (m.subscribe_url[0] == '\0') != (m.type == EVP_SNS_NOTIFICATION))
			abort();
		if (m.message == NULL || m.canonical == NULL || strlen(m.canonical) > m.canonical_len)
			abort();
		snprintf(head, sizeof head, "Message\n");
		char tail[64];
		snprintf(tail, sizeof tail, "\nType\n%s\n", types[m.type]);
		size_t tl = strlen(tail);
		if (memcmp(m.canonical, head, strlen(head)) != 0 || m.canonical_len < tl ||
		    memcmp(m.canonical + m.canonical_len - tl, tail, tl) != 0)
			abort();
		check_ses(m.message, m.message_len, m.message_id);
		evparse_sns_clear(&m);
	}
	check_ses((const char *)data, size, "00000000-0000-0000-0000-000000000000");
	return 0;
}
