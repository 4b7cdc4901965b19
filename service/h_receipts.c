/*
 * h_receipts: a consent event's receipt for staff, in the Kantara Consent
 * Receipt v1.1 shape (service/domain/receipt.h has the field mapping).
 *
 *   GET /v1/contacts/{id}/receipts/{receipt id}   consents.read
 *
 * The receipt names the contact by id and the fields it holds by category
 * only, so it reveals no personal value; it is audited as receipts.read
 * with the receipt id in the detail. The person downloads the same receipt
 * from the preference page (h_customer.c).
 */
#include "service/app.h"

#include "service/base/error.h"
#include "service/domain/contact.h"
#include "service/domain/receipt.h"
#include "service/router.h"

#include <string.h>

static int h_receipt_get(struct reqctx *ctx)
{
	const char *id = ctx->param[0], *rid = ctx->param[1];
	struct store_contact ct;
	enum decision_reason why = REASON_NONE;
	json_t *out = NULL;
	if (!app_require(ctx, POLICY_ACT_CONSENTS_READ, id, NULL))
		return 0;
	struct txn t = app_txn(ctx, ctx->rd);
	const struct config_org *org = &ctx->app->cfg.org;
	const struct receipt_controller ctl = { org->name, org->postal_address, org->privacy_policy_url,
						org->contact_email, org->jurisdiction };
	audit_begin(ctx, "receipts.read", id, NULL, NULL);
	audit_detail(ctx, json_pack("{s:s}", "receipt_id", rid));
	int rc = contact_get_active(&t, id, &ct, &why);
	if (rc == 0)
		rc = receipt_json(&t, &ct, rid, &ctl, NULL, &out);
	if (rc != 0) {
		if (why == REASON_NONE && rc == ERR_NOTFOUND)
			why = REASON_NOT_FOUND;
		audit_decide(ctx, false, why != REASON_NONE ? decision_reason_name(why) : "error");
		return app_reason(ctx, rc, why);
	}
	audit_decide(ctx, true, "allowed");
	reply_json(ctx, 200, out);
	app_commit(ctx);
	return 0;
}

const struct route receipt_routes[] = {
	{ "GET", "/v1/contacts/{id}/receipts/{id}", h_receipt_get, NULL, false, 0, "receipts.read" },
	{ 0 },
};
