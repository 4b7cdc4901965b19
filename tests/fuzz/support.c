/* support: shared fuzz-target helpers; see support.h. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/evparse.h"

#ifndef CONSENTD_SOURCE_DIR
#define CONSENTD_SOURCE_DIR "."
#endif

struct policy *fuzz_example_policy(void)
{
	static struct policy *p;
	if (p != NULL)
		return p;
	const char *dir = getenv("CONSENTD_SOURCE_DIR");
	char path[4096];
	struct policy_errors *errs = NULL;
	snprintf(path, sizeof path, "%s/policy/example-policy.json", dir ? dir : CONSENTD_SOURCE_DIR);
	if (policy_load_file(&p, path, &errs) != 0) {
		fprintf(stderr, "fuzz: cannot load %s\n", path);
		policy_errors_print(errs, stderr);
		abort();
	}
	policy_errors_free(errs);
	return p;
}

/* What every accepted item must satisfy. */
void fuzz_check_event_item(const struct evp_item *it)
{
	char norm[EVP_EMAIL_CAP];
	if (memchr(it->email, '\0', sizeof it->email) == NULL ||
	    memchr(it->id, '\0', sizeof it->id) == NULL ||
	    memchr(it->group, '\0', sizeof it->group) == NULL || it->reason == NULL || it->time_us < 0)
		abort();
	switch (it->kind) {
	case EVP_SUPPRESS:
		if (strcmp(it->reason, "bounce") != 0 && strcmp(it->reason, "complaint") != 0 &&
		    strcmp(it->reason, "unsubscribe") != 0)
			abort();
		/* fall through */
	case EVP_SOFT:
		if (normalize_email(it->email, strlen(it->email), norm, sizeof norm) != 0 ||
		    it->id[0] == '\0')
			abort();
		if (it->kind == EVP_SOFT && it->reason[0] != '\0')
			abort();
		break;
	case EVP_IGNORED:
		if (it->reason[0] != '\0')
			abort();
		break;
	default: abort();
	}
}

void fuzz_check_event_rc(int rc)
{
	if (rc != 0 && ((rc != ERR_INVALID && rc != ERR_TOOBIG) || err_code() != rc))
		abort();
}
