/*
 * support: what several fuzz targets share. Linked into every target (both
 * the libFuzzer and the corpus-replay builds).
 */
#ifndef CONSENTD_FUZZ_SUPPORT_H
#define CONSENTD_FUZZ_SUPPORT_H

struct policy;
struct evp_item;

/* The example policy (policy/example-policy.json), loaded once and kept for
 * the process; aborts if it cannot be loaded. Found through
 * $CONSENTD_SOURCE_DIR, else the source directory compiled in. */
struct policy *fuzz_example_policy(void);

/* The provider event parsers (service/evparse.c): what every accepted item
 * must satisfy, and what every result code must be (0, ERR_INVALID or
 * ERR_TOOBIG, set as the current error). Both abort on a violation. */
void fuzz_check_event_item(const struct evp_item *it);
void fuzz_check_event_rc(int rc);

#endif
