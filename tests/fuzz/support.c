/* support: shared fuzz-target helpers; see support.h. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

#include "policy/policy.h"

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
