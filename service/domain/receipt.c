/*
 * receipt: consent receipts (Kantara CR v1.1 shape). See receipt.h for the
 * field mapping.
 */
#include "service/domain/receipt.h"

#include "policy/policy.h"
#include "service/base/codec.h"
#include "service/base/error.h"
#include "service/domain/consent.h"
#include "service/domain/record.h"

#include <stdio.h>
#include <string.h>

#define RECEIPT_VERSION "KI-CR-v1.1.0"

/* Methods consentd itself records, and what they mean to the person. */
static const struct {
	const char *method, *en, *zh;
} methods[] = {
	{ "api", "recorded by our staff or systems", "由我们的员工或系统记录" },
	{ "import", "imported from an earlier system", "从早期系统导入" },
	{ "preference_centre", "on your privacy choices page", "在您的隐私选择页面上" },
	{ "one_click", "one-click unsubscribe from an email", "通过邮件中的一键退订" },
	{ "gpc", "your browser's Global Privacy Control signal", "您的浏览器发出的“全球隐私控制”信号" },
	{ "double_opt_in", "confirmed by you from a link we emailed", "由您通过我们发送的邮件链接确认" },
	{ "web_form", "a form on our website", "我们网站上的表单" },
	{ "paper", "a paper form", "纸质表格" },
	{ "phone", "a phone call", "电话" },
	{ "email", "an email", "电子邮件" },
	{ "in_person", "in person", "当面" },
};

/* A plain label of a collection method: "api" -> "recorded by our staff
 * or systems". An unknown method gets a generic label, never the raw
 * value (the page keeps its own table of the same words, prefpage.c). */
static const char *receipt_method_label(const char *method, bool zh)
{
	for (size_t i = 0; method != NULL && i < sizeof methods / sizeof methods[0]; i++)
		if (strcmp(methods[i].method, method) == 0)
			return zh ? methods[i].zh : methods[i].en;
	/* A method named by a caller's own system: say who recorded it, not
	 * the system's internal word. */
	return zh ? "由我们的员工或系统记录" : "recorded by our staff or systems";
}

/* The Kantara v1.1 PII categories of a field, by its name and class. */
static const char *pii_category(const struct policy_field_info *fi)
{
	static const struct {
		const char *field, *category;
	} named[] = {
		{ "email", "2 - Contact" },
		{ "phone", "2 - Contact" },
		{ "postal_address", "2 - Contact" },
		{ "name", "1 - Biographical" },
		{ "birthday", "1 - Biographical" },
		{ "family", "1 - Biographical" },
		{ "income", "7 - Financial" },
		{ "health", "6 - Health" },
		{ "notes", "4 - Communications/Social" },
	};
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (strcmp(named[i].field, fi->name) == 0)
			return named[i].category;
	return fi->field_class == POLICY_CLASS_SENSITIVE ? "Sensitive (unclassified)" : "1 - Biographical";
}

static void add_unique(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return;
	json_array_append_new(arr, json_string(s));
}

struct fields_walk {
	const struct policy *p;
	json_t *pii, *spi;
};

static int field_cb(void *arg, const char *name, const uint8_t *sealed, size_t len)
{
	struct fields_walk *w = arg;
	struct policy_field_info fi;
	(void)sealed;
	(void)len;
	if (policy_field_get(w->p, name, &fi) != 0)
		return 0;
	add_unique(w->pii, pii_category(&fi));
	if (fi.field_class == POLICY_CLASS_SENSITIVE)
		add_unique(w->spi, pii_category(&fi));
	return 0;
}

struct event_walk {
	const char *receipt_id;
	struct store_consent found;
	bool have;
};

static int event_cb(void *arg, const struct store_consent *cs)
{
	struct event_walk *w = arg;
	if (strcmp(cs->receipt_id, w->receipt_id) == 0) {
		w->found = *cs;
		w->found.evidence = NULL;
		w->found.evidence_len = 0;
		w->have = true;
	}
	return 0;
}

/* Whether the event is the contact's current state for its purpose and
 * channel (a back-dated event may only have joined the history). */
static int is_current(struct txn *t, const struct store_consent *cs, bool *current)
{
	struct store_consent cur;
	int rc = store_consent_get(t->c, cs->contact_id, cs->purpose, cs->channel, &cur);
	*current = rc == 0 && strcmp(cur.receipt_id, cs->receipt_id) == 0;
	return rc == ERR_NOTFOUND ? 0 : rc;
}

static const char *basis_category(enum policy_legal_basis b)
{
	switch (b) {
	case POLICY_BASIS_CONSENT: return "Consent";
	case POLICY_BASIS_CONTRACT: return "2 - Contracted Service";
	case POLICY_BASIS_LEGAL_OBLIGATION: return "Legal Obligation";
	default: return "Legitimate Interest or Public Task";
	}
}

static void day_text(int64_t us, char *out, size_t cap)
{
	int y, m, d;
	int64_t s = us / 1000000;
	civil_from_days(s >= 0 ? s / 86400 : (s - 86399) / 86400, &y, &m, &d);
	snprintf(out, cap, "%04d-%02d-%02d", y, m, d);
}

static void termination(const struct store_consent *cs, bool zh, char *out, size_t cap)
{
	char when[32];
	if (strcmp(cs->status, "granted") != 0 && strcmp(cs->status, "pending_confirmation") != 0) {
		day_text(cs->withdrawn_us != 0 ? cs->withdrawn_us : cs->at_us, when, sizeof when);
		snprintf(out, cap, zh ? "已于 %s 结束（%s）" : "Ended on %s (%s)", when, cs->status);
	} else if (cs->expires_us != 0) {
		day_text(cs->expires_us, when, sizeof when);
		snprintf(out, cap, zh ? "至 %s 或您撤回同意时" : "Until %s, or when you withdraw it", when);
	} else {
		snprintf(out, cap, "%s", zh ? "直至您撤回同意" : "Until you withdraw it");
	}
}

int receipt_json(struct txn *t, const struct store_contact *ct, const char *receipt_id,
		 const struct receipt_controller *ctl, const char *lang, json_t **out)
{
	struct event_walk ew;
	struct policy_purpose_info pi;
	bool zh = lang != NULL && strcmp(lang, "zh-CN") == 0, current = false;
	char term[128];
	*out = NULL;
	memset(&ew, 0, sizeof ew);
	ew.receipt_id = receipt_id;
	if (ct->erased)
		return err_set(ERR_GONE, "the contact was erased");
	int rc = consent_history_each(t, ct->id, event_cb, &ew);
	if (rc != 0)
		return rc;
	if (!ew.have)
		return err_set(ERR_NOTFOUND, "no consent event of this contact has this receipt id");
	const struct store_consent *cs = &ew.found;
	if ((rc = is_current(t, cs, &current)) != 0)
		return rc;
	bool known = policy_purpose_get(t->policy, cs->purpose, &pi) == 0;
	struct fields_walk fw = { t->policy, json_array(), json_array() };
	if ((rc = store_fields_each(t->c, ct->id, field_cb, &fw)) != 0) {
		json_decref(fw.pii);
		json_decref(fw.spi);
		return rc;
	}
	json_t *category = json_array();
	json_array_append_new(category, json_string(known ? basis_category(pi.legal_basis) : "Unknown"));
	if (known && pi.sale_or_sharing)
		json_array_append_new(category, json_string("Sharing with third parties"));
	termination(cs, zh, term, sizeof term);
	const char *description = !known		    ? cs->purpose
				  : zh && pi.description_zh ? pi.description_zh
							    : pi.description;
	json_t *purpose = json_pack(
		"{s:s, s:o, s:s, s:o, s:b, s:s, s:b}", "purpose", description, "purposeCategory", category,
		"consentType", known && pi.legal_basis == POLICY_BASIS_CONSENT ? "EXPLICIT" : "NOT_REQUIRED",
		"piiCategory", fw.pii, "primaryPurpose", known && !pi.sale_or_sharing, "termination", term,
		"thirdPartyDisclosure", known && pi.sale_or_sharing);
	json_t *controller = json_pack("{s:s}", "piiController",
				       ctl->name != NULL && ctl->name[0] ? ctl->name : "(not configured)");
	if (ctl->postal_address != NULL && ctl->postal_address[0])
		json_object_set_new(controller, "address", json_string(ctl->postal_address));
	if (ctl->contact_email != NULL && ctl->contact_email[0])
		json_object_set_new(controller, "email", json_string(ctl->contact_email));
	char method[256];
	snprintf(method, sizeof method, "%s", receipt_method_label(cs->method, zh));
	json_t *o = json_pack(
		"{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:[o], s:s, s:[{s:s, s:[o]}], s:b, s:o, "
		"s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b}}",
		"version", RECEIPT_VERSION, "jurisdiction",
		ctl->jurisdiction != NULL && ctl->jurisdiction[0] ? ctl->jurisdiction : "unspecified",
		"consentTimestamp", (json_int_t)(cs->at_us / 1000000), "collectionMethod", method,
		"consentReceiptID", cs->receipt_id, "language", zh ? "zh-CN" : "en", "piiPrincipalId", ct->id,
		"piiControllers", controller, "policyUrl",
		ctl->policy_url != NULL && ctl->policy_url[0] ? ctl->policy_url : "", "services", "service",
		ctl->name != NULL && ctl->name[0] ? ctl->name : "consentd", "purposes", purpose, "sensitive",
		json_array_size(fw.spi) > 0, "spiCat", fw.spi, "consentd", "contact_id", ct->id, "purpose",
		cs->purpose, "channel", cs->channel, "status", cs->status, "legal_basis", cs->legal_basis,
		"notice_version", cs->notice_version, "method", cs->method, "recorded_at",
		json_time(cs->recorded_us), "expires_at", json_time(cs->expires_us), "current", current);
	if (o == NULL)
		return err_set(ERR_NOMEM, "out of memory");
	*out = o;
	return 0;
}
