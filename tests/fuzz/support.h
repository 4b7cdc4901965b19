/*
 * support: what several fuzz targets share. Linked into every target (both
 * the libFuzzer and the corpus-replay builds).
 */
#ifndef CONSENTD_FUZZ_SUPPORT_H
#define CONSENTD_FUZZ_SUPPORT_H

struct policy;

/* The example policy (policy/example-policy.json), loaded once and kept for
 * the process; aborts if it cannot be loaded. Found through
 * $CONSENTD_SOURCE_DIR, else the source directory compiled in. */
struct policy *fuzz_example_policy(void);

#endif
