/*
 * receipt: a consent event rendered as a consent receipt in the shape of
 * the Kantara Initiative Consent Receipt Specification v1.1 (the structure
 * ISO/IEC TS 27560 builds on). Every consent event already carries a
 * receipt id (consent.h); this module only reads: the event with that id
 * in the contact's history, the policy's purpose, and which fields the
 * contact holds (names only, never their values).
 *
 * The mapping (docs/customer.md "Consent receipts" is the reference):
 * version "KI-CR-v1.1.0"; consentReceiptID the event's receipt id;
 * consentTimestamp the event's time (seconds since 1970, UTC);
 * jurisdiction from the configuration; collectionMethod a plain label of
 * the event's method and source; piiPrincipalId the contact id (the
 * receipt never holds the address itself); piiControllers the configured
 * organisation; policyUrl its privacy policy; one service (the
 * organisation) with one purpose (the event's): purposeCategory from the
 * legal basis (and third-party sharing), consentType, piiCategory from the
 * classes of the fields held, primaryPurpose, termination (expiry or
 * "until withdrawn", or the time it ended), thirdPartyDisclosure from
 * sale_or_sharing; sensitive and spiCat from the sensitive fields held.
 * What the Kantara fields cannot say (channel, status, legal basis, notice
 * version, whether the event is the current state) is under "consentd".
 */
#ifndef CONSENTD_DOMAIN_RECEIPT_H
#define CONSENTD_DOMAIN_RECEIPT_H

#include <jansson.h>
#include <stdbool.h>

#include "service/domain/txn.h"
#include "service/store/store.h"

/* Who the receipt names as the PII controller ("" leaves a field out). */
struct receipt_controller {
	const char *name, *postal_address, *policy_url, *contact_email, *jurisdiction;
};

/* The receipt of contact ct's consent event receipt_id, in language lang
 * ("en" or "zh-CN": the labels; NULL English), into *out. ERR_NOTFOUND
 * when ct has no event with that id; ERR_GONE for an erased contact. */
int receipt_json(struct txn *t, const struct store_contact *ct, const char *receipt_id,
		 const struct receipt_controller *ctl, const char *lang, json_t **out);

#endif
