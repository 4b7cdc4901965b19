/*
 * fuzz_policy: the policy loader and decision engine on arbitrary bytes.
 *
 * Every input goes through policy_load_buffer. A failed load must come with
 * at least one error and every error must be printable; a successful load
 * is then asked a spread of questions (every purpose x channel for a few
 * roles, reads for every purpose) whose answers must keep the engine's
 * invariants: only granted/not_required allow, and fields are visible only
 * on an allowed read. Any violation aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct policy_decision *d)
{
	bool ok_reason = d->reason == POLICY_REASON_GRANTED || d->reason == POLICY_REASON_NOT_REQUIRED;
	if (d->allowed != ok_reason || (!d->allowed && d->visible_fields != 0) ||
	    strcmp(policy_reason_name(d->reason), "unknown") == 0)
		abort();
}

static void ask(const struct policy *p, const uint8_t *data, size_t size)
{
	static const char *const roles[] = { "admin", "support", "marketing", "auditor", "nobody" };
	static const char *const channels[] = { "email", "sms", "phone", "post", "push", "in_app", "fax" };
	size_t np = policy_purpose_count(p);
	const char *collected[POLICY_MAX_PURPOSES + 1];
	size_t nc = 0;
	struct policy_purpose_info pi;

	/* The input's last bytes pick the subject, so the fuzzer steers it. */
	uint8_t flags = size > 0 ? data[size - 1] : 0;
	uint8_t pick = size > 1 ? data[size - 2] : 0;
	for (size_t i = 0; i < np; i++)
		if (((pick >> (i % 8)) & 1) && policy_purpose_at(p, i, &pi) == 0)
			collected[nc++] = pi.name;
	collected[nc++] = "not_a_purpose";

	struct policy_subject s = {
		.exists = !(flags & 1),
		.erased = (flags & 2) != 0,
		.suppressed = (flags & 4) != 0,
		.suppressed_by_list = (flags & 8) != 0,
		.collected_for = collected,
		.n_collected_for = nc,
		.consent = { .status = (enum policy_consent_status)((flags >> 4) % 5),
			     .expires_at = (flags & 0x80) ? 1000 : 0 },
	};
	const int64_t now = 1000 - 1 + (pick & 1) * 2;

	for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
		for (size_t i = 0; i < np; i++) {
			if (policy_purpose_at(p, i, &pi) != 0)
				abort();
			struct policy_decision d;
			for (size_t c = 0; c < sizeof channels / sizeof channels[0]; c++) {
				if (policy_decide_contact(p, roles[r], pi.name, channels[c], &s, now, &d) !=
				    0)
					abort();
				check(&d);
			}
			if (policy_decide_read(p, roles[r], pi.name, &s, now, &d) != 0)
				abort();
			check(&d);
			if (d.allowed && d.visible_fields != policy_role_fields(p, roles[r], pi.name))
				abort();
			for (size_t f = 0; f < policy_field_count(p); f++)
				if ((d.visible_fields >> f) & 1 && policy_field_name(p, f) == NULL)
					abort();
		}
	}
	const char *gpc[POLICY_MAX_PURPOSES];
	if (policy_purposes_for_gpc(p, gpc, POLICY_MAX_PURPOSES) > np)
		abort();
	uint8_t hash[32] = { 0 };
	memcpy(hash, data, size < 32 ? size : 32);
	const char *name, *role;
	if (policy_principal_find(p, hash, &name, &role) == 0 && !policy_role_exists(p, role))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL;
	struct policy_errors *errs = NULL;
	int rc = policy_load_buffer(&p, (const char *)data, size, "fuzz.json", &errs);
	if (rc == 0) {
		if (p == NULL || errs != NULL)
			abort();
		struct policy *extra = policy_ref(p);
		ask(p, data, size);
		policy_unref(extra);
	} else {
		if (p != NULL)
			abort();
		if (rc != ERR_NOMEM && policy_errors_count(errs) == 0)
			abort();
		char line[2048];
		for (size_t i = 0; i < policy_errors_count(errs); i++)
			if (policy_errors_format(errs, i, line, sizeof line) < 0)
				abort();
	}
	policy_errors_free(errs);
	policy_free(p);
	return 0;
}
