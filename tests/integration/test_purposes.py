"""Purpose-bound access and consent: issue 3's scenarios, one test each."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, cli, run  # noqa: E402

PATIENT = {"email": "pat.q@example.org", "name": "Pat Quill", "health": "type 2 diabetes",
           "income": 54000, "family": "two children", "collected_for": ["care"], "source": "clinic"}
CUSTOMER = {"email": "cora.vance@example.org", "name": "Cora Vance", "phone": "+15555550123",
            "postal_address": "1 Main St, Springfield", "income": 71000, "health": "none declared",
            "notes": "called about billing", "collected_for": ["service", "marketing"], "source": "shop"}


def test_care_data_is_never_used_for_marketing_even_with_consent(srv):
    cid = srv.create_contact(**PATIENT)
    # Even an explicit marketing consent does not make care data marketable.
    srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=marketing", token="marketing")
    assert_problem(st, body, 403, "forbidden")
    assert body["reason"] == "purpose_incompatible", body
    assert "fields" not in body and "Pat" not in json.dumps(body)
    res = srv.check("marketing", "email", contact_id=cid)
    assert res == {"allowed": False, "reason": "purpose_incompatible", "purpose": "marketing",
                   "channel": "email", "contact_id": cid}, res
    res = srv.check("marketing", "email", email="PAT.Q@example.org")
    assert res["allowed"] is False and res["reason"] == "purpose_incompatible", res
    rows = srv.audit_rows("record_id = ? AND action IN ('contacts.read', 'consent.check')", (cid,))
    assert [r["reason"] for r in rows] == ["purpose_incompatible"] * 3, rows
    assert all(r["decision"] == "deny" and r["fields"] == "" for r in rows), rows


def test_each_role_sees_only_the_fields_its_purpose_needs(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=marketing", token="marketing")
    assert st == 200, body
    assert set(body["fields"]) == {"name", "email"}, body["fields"]
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="support")
    assert st == 200, body
    assert set(body["fields"]) == {"name", "email", "phone", "postal_address", "notes"}, body["fields"]
    assert "income" not in body["fields"] and "health" not in body["fields"]
    # The audit entry names exactly the fields revealed.
    rows = srv.audit_rows("record_id = ? AND action = 'contacts.read'", (cid,))
    assert rows[0]["role"] == "marketing" and set(rows[0]["fields"].split(",")) == {"name", "email"}
    assert set(rows[1]["fields"].split(",")) == {"name", "email", "phone", "postal_address", "notes", "source",
                                                 "owner"}
    # A role may not read for a purpose that is not its own.
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="marketing")
    assert_problem(st, body, 403)
    assert body["reason"] == "role_denied"


def test_withdrawal_takes_effect_on_the_very_next_check(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted", source="signup-form",
                    collection_method="web_form")
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "granted"
    srv.set_consent(cid, "marketing", "email", "withdrawn", source="customer-call",
                    collection_method="phone")
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="support")
    assert st == 200, body
    hist = body["history"]
    assert [(h["status"], h["source"], h["collection_method"]) for h in hist] == [
        ("granted", "signup-form", "web_form"), ("withdrawn", "customer-call", "phone")], hist
    assert all(h["at"] and h["receipt_id"] for h in hist)
    assert hist[0]["receipt_id"] != hist[1]["receipt_id"]
    assert body["consents"][0]["status"] == "withdrawn"
    assert body["consents"][0]["granted_at"] == hist[0]["at"]
    assert "evidence" not in json.dumps(body)  # support may not see evidence


def test_expired_consent_is_denied_and_email_does_not_allow_sms(srv):
    cid = srv.create_contact(**CUSTOMER)
    yesterday = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
    last_year = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 400 * 86400))
    srv.set_consent(cid, "marketing", "email", "granted", at=last_year, expires_at=yesterday)
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "expired", res
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert body["consents"][0]["status"] == "granted"
    assert body["consents"][0]["effective_status"] == "expired"
    srv.set_consent(cid, "marketing", "email", "granted")
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "granted"
    res = srv.check("marketing", "sms", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "no_consent", res
    # A channel the purpose does not use, and a consent that lapses by default.
    res = srv.check("marketing", "push", contact_id=cid)
    assert res["reason"] == "channel_not_allowed", res
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    granted = [c for c in body["consents"] if c["status"] == "granted"][0]
    assert granted["expires_at"] is not None  # default lifetime from the policy


def test_a_back_dated_grant_never_overrides_a_newer_withdrawal(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted")
    srv.set_consent(cid, "marketing", "email", "withdrawn", source="customer-call")
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "withdrawn"
    # A CRM replays an old receipt: it joins the history, not the current state.
    srv.set_consent(cid, "marketing", "email", "granted", source="crm-replay",
                    at="2025-01-01T00:00:00Z", expires_at="2030-01-01T00:00:00Z")
    res = srv.check("marketing", "email", contact_id=cid)
    assert res["allowed"] is False and res["reason"] == "withdrawn", res
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert body["consents"][0]["status"] == "withdrawn", body
    assert [h["source"] for h in body["history"]][0] == "crm-replay", body["history"]


def test_marketing_never_sees_that_someone_has_care_consents(srv):
    cid = srv.create_contact(**dict(CUSTOMER, collected_for=["service", "marketing", "care"]))
    srv.set_consent(cid, "care", "phone", "granted")
    srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="marketing")
    assert st == 200, body
    assert {c["purpose"] for c in body["consents"]} == {"marketing"}, body
    assert {h["purpose"] for h in body["history"]} == {"marketing"}, body
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="support")
    assert {c["purpose"] for c in body["consents"]} == {"care", "marketing"}, body


def test_refused_and_unknown_contacts_are_not_contactable(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "sms", "refused")
    assert srv.check("marketing", "sms", contact_id=cid)["reason"] == "refused"
    res = srv.check("marketing", "email", email="stranger@example.org")
    assert res == {"allowed": False, "reason": "unknown_contact", "purpose": "marketing",
                   "channel": "email"}, res
    # service is a contract purpose: no consent needed.
    assert srv.check("service", "email", contact_id=cid, token="admin")["reason"] == "not_required"


def test_unknown_purpose_or_channel_is_422(srv):
    cid = srv.create_contact(**CUSTOMER)
    st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/astrology", token="admin",
                        json={"channel": "email", "status": "granted"})
    assert_problem(st, body, 422, "unprocessable")
    assert body["reason"] == "unknown_purpose"
    st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                        json={"channel": "carrier_pigeon", "status": "granted"})
    assert_problem(st, body, 422)
    assert body["reason"] == "unknown_channel"
    st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                        json={"channel": "push", "status": "granted"})
    assert_problem(st, body, 422)
    assert body["reason"] == "channel_not_allowed"
    st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                        json={"contact_id": cid, "purpose": "astrology", "channel": "email"})
    assert_problem(st, body, 422)
    st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                        json={"channel": "email", "status": "maybe"})
    assert_problem(st, body, 400)
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert body["consents"] == [] and body["history"] == []


def test_consent_evidence_is_encrypted_and_shown_only_to_admin(srv):
    cid = srv.create_contact(**CUSTOMER)
    srv.set_consent(cid, "marketing", "email", "granted",
                    evidence={"form_url": "https://shop.example/newsletter-xq7", "user_agent": "Zorgbrowser/9"})
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert body["consents"][0]["evidence"]["user_agent"] == "Zorgbrowser/9"
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="marketing")
    assert st == 200 and "evidence" not in body["consents"][0]
    srv.stop()
    if srv.pg:
        # PostgreSQL: everything the database holds, as pg_dump writes it.
        data = subprocess.run(["pg_dump", "--data-only", srv.pg], check=True,
                              capture_output=True, timeout=120).stdout
        assert b"consent_event" in data  # else the check below would check nothing
        assert b"Zorgbrowser" not in data and b"newsletter-xq7" not in data
        return
    assert os.path.exists(srv.db), srv.db  # else the loop below would check nothing
    for name in ("consentd.db", "consentd.db-wal"):
        path = os.path.join(srv.data, name)
        if os.path.exists(path):
            data = open(path, "rb").read()
            assert b"Zorgbrowser" not in data and b"newsletter-xq7" not in data


def test_invalid_policy_refuses_start_and_sighup_keeps_the_old_policy():
    srv = Server(start=False)
    try:
        policy = os.path.join(srv.data, "policy.json")
        good = open(policy).read()
        doc = json.loads(good)
        doc["roles"]["marketing"]["fields"]["marketing"].append("shoe_size")
        bad = json.dumps(doc)
        open(policy, "w").write(bad)
        code = srv.start(expect_fail=True)
        assert code == 3, (code, srv.output)
        assert policy in srv.output, srv.output
        assert "$.roles.marketing.fields.marketing[" in srv.output, srv.output
        assert "shoe_size" in srv.output, srv.output
        code, out, _ = cli("policy", "check", policy, check=False)
        assert code == 3 and "$.roles.marketing.fields.marketing[" in out, out

        open(policy, "w").write(good)
        srv.start()
        cid = srv.create_contact(**CUSTOMER)
        srv.set_consent(cid, "marketing", "email", "granted")
        assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
        open(policy, "w").write(bad)
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
        # A valid change is picked up: marketing loses the email channel.
        doc = json.loads(good)
        doc["purposes"]["marketing"]["channels"].remove("email")
        open(policy, "w").write(json.dumps(doc))
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            if srv.check("marketing", "email", contact_id=cid)["reason"] == "channel_not_allowed":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the valid policy was not loaded")
        out = srv.stop()
        assert "policy reload refused" in out and "shoe_size" in out, out
        reloads = srv.audit_rows("action = 'policy.reload'")
        assert [r["decision"] for r in reloads] == ["deny", "allow"], reloads
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
