/*
 * auditq: the audit trail as stored — verification of the stored chain
 * against the signed checkpoints, shared by `consentd audit verify`,
 * GET /v1/audit/verify and the server's scheduled verification.
 */
#ifndef CONSENTD_AUDITQ_H
#define CONSENTD_AUDITQ_H

#include "audit/verify.h"
#include "service/store/store.h"

/*
 * Verifies the stored entries after from_seq (0: all of them; otherwise
 * from_seq and from_hash must come from a checkpoint verified before) against
 * every stored checkpoint, the anchor files at anchor_path (audit/anchor.h:
 * the newest and its generations; a missing, older or forged one is a fault)
 * and the checkpoints in the files named in extra (an auditor's own copies;
 * each must exist and be valid), with the public key at pub_path.
 *
 * Memory is O(1) in the number of entries and of stored checkpoints: both
 * are pulled through cursors. A trail with entries but no signed checkpoint
 * at all, or with checkpoints in the database but no anchor file, is not ok.
 * Returns 0 when verification ran (res->ok tells the verdict), or a negative
 * error when it could not.
 */
int auditq_verify_from(struct store_conn *c, const char *pub_path, const char *anchor_path,
		       const char *const *extra, size_t n_extra, int64_t from_seq,
		       const uint8_t from_hash[32], struct audit_verify_result *res);

/* The whole trail: auditq_verify_from with from_seq 0. */
int auditq_verify(struct store_conn *c, const char *pub_path, const char *anchor_path,
		  const char *const *extra, size_t n_extra, struct audit_verify_result *res);

/* Reads one checkpoint from path: a line as written by
 * audit_checkpoint_format_json, or the reply of GET
 * /v1/audit/checkpoints/latest saved as it came (its "checkpoint" member).
 * ERR_NOTFOUND when the file does not exist. */
int auditq_read_checkpoint(const char *path, struct audit_checkpoint *out);

#endif
