/*
 * auditq: the audit trail as stored — verification of the stored chain
 * against the signed checkpoints, shared by `consentd audit verify` and
 * GET /v1/audit/verify.
 */
#ifndef CONSENTD_AUDITQ_H
#define CONSENTD_AUDITQ_H

#include "audit/verify.h"
#include "service/store/store.h"

/* Verifies every stored entry against every stored checkpoint, plus the
 * checkpoints in the files named in extra (the service's anchor file, an
 * auditor's own copy; a missing file is skipped, an unreadable or invalid
 * one fails), with the public key at pub_path. Returns 0 when verification
 * ran (res->ok tells the verdict), or a negative error when it could not. */
int auditq_verify(struct store_conn *c, const char *pub_path, const char *const *extra,
		  size_t n_extra, struct audit_verify_result *res);

/* Reads one checkpoint (a line as written by audit_checkpoint_format_json)
 * from path; ERR_NOTFOUND when the file does not exist. */
int auditq_read_checkpoint(const char *path, struct audit_checkpoint *out);

#endif
