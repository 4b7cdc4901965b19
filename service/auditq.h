/*
 * auditq: the audit trail as stored — verification of the stored chain
 * against the signed checkpoints, shared by `consentd audit verify` and
 * GET /v1/audit/verify.
 */
#ifndef CONSENTD_AUDITQ_H
#define CONSENTD_AUDITQ_H

#include "audit/verify.h"
#include "service/store/store.h"

/* Verifies every stored entry and checkpoint with the public key at
 * pub_path. Returns 0 when verification ran (res->ok tells the verdict),
 * or a negative error when it could not run. */
int auditq_verify(struct store_conn *c, const char *pub_path, struct audit_verify_result *res);

#endif
