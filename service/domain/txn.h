/*
 * txn: the handle every domain function runs on.
 *
 * The domain layer (service/domain/) owns the rules of consentd: how a
 * contact is created and erased, which consent event is current, which
 * suppression covers a use and which may be lifted, what a preference link
 * may do. Its functions take a struct txn: the store connection to work on
 * (inside a job's apply, the writer's connection in the batch's transaction,
 * so every write of the job commits with its audit entry or not at all; for
 * reads, the request's reader connection), the keys that seal and open
 * personal data, the request's policy, and the request's clock.
 *
 * A handler fills one with app_txn() and never touches what is inside:
 * sealing, blind indexes and keys are the domain's business. A txn is a
 * small value on the stack; it owns nothing.
 */
#ifndef CONSENTD_DOMAIN_TXN_H
#define CONSENTD_DOMAIN_TXN_H

#include <stdint.h>

struct store_conn;
struct keyring;
struct policy;

struct txn {
	struct store_conn *c;	     /* borrowed */
	const struct keyring *keys;  /* borrowed */
	const struct policy *policy; /* borrowed */
	int64_t now_us;
};

#endif
