"""Double opt-in: a purpose with "double_opt_in": true takes an email grant
as pending_confirmation until the person confirms it from the link mailed
to them. One scenario each, as the person (and the marketing system that
checks) would meet it."""
import email
import email.policy
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, run  # noqa: E402

BOB = {"email": "bob.customer@example.org", "name": "Bob Customer",
       "collected_for": ["service", "marketing"], "source": "shop-signup"}


def optin_server(env=None, data=None):
    srv = Server(start=False, env=env, data=data)
    if data is None:
        path = os.path.join(srv.data, "policy.json")
        with open(path) as f:
            doc = json.load(f)
        doc["purposes"]["marketing"]["double_opt_in"] = True
        with open(path, "w") as f:
            json.dump(doc, f)
    srv.start()
    return srv


def confirmation_mail(srv):
    """The confirmation mail in the development folder and its token."""
    import time
    folder = os.path.join(srv.data, "mail-outbox")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(folder, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            text = msg.get_body(preferencelist=("plain",)).get_content()
            m = re.search(r"/p/confirm/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", text)
            if m:
                return msg, m.group(1)
        time.sleep(0.05)
    raise AssertionError("no confirmation mail")


def grant(srv, cid, channel="email", purpose="marketing"):
    st, out = srv.call("PUT", f"/v1/contacts/{cid}/consents/{purpose}", token="admin",
                       json={"channel": channel, "status": "granted", "source": "signup-form",
                             "evidence": {"form": "https://shop.example/signup"}})
    assert st == 200, (st, out)
    return out


def confirm_page(srv, tok, method="GET", lang=None):
    h = {"Accept-Language": lang} if lang else {}
    if method == "POST":
        h["Content-Type"] = "application/x-www-form-urlencoded"
        st, hd, data = srv.raw("POST", f"/p/confirm/{tok}", body=b"action=confirm", headers=h)
    else:
        st, hd, data = srv.raw("GET", f"/p/confirm/{tok}", headers=h)
    return st, data.decode()


def test_a_double_opt_in_grant_waits_for_the_persons_click_and_then_counts():
    srv = optin_server()
    try:
        cid = srv.create_contact(**BOB)
        receipt = grant(srv, cid)
        assert receipt["status"] == "pending_confirmation", receipt
        d = srv.check("marketing", "email", contact_id=cid)
        assert d["allowed"] is False and d["reason"] == "pending_confirmation", d
        put = srv.audit_rows("action = ?", ("consents.write",))
        assert put[-1]["reason"] == "pending_confirmation", put[-1]
        msg, tok = confirmation_mail(srv)
        assert msg["To"].addresses[0].addr_spec == BOB["email"]
        assert msg["Subject"] == "Please confirm your subscription", msg["Subject"]
        # Opening the link (as a mail scanner would) confirms nothing.
        st, page = confirm_page(srv, tok)
        assert st == 200 and 'action="/p/confirm/' in page and "news, offers" in page, page
        assert srv.check("marketing", "email", contact_id=cid)["reason"] == "pending_confirmation"
        # The button does.
        st, page = confirm_page(srv, tok, "POST")
        assert st == 200 and "confirmed" in page, page
        d = srv.check("marketing", "email", contact_id=cid)
        assert d["allowed"] is True and d["reason"] == "granted", d
        # The history shows both events; the confirmation is the evidence.
        st, cons = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
        assert st == 200, cons
        hist = [e for e in cons["history"] if e["purpose"] == "marketing" and e["channel"] == "email"]
        assert [e["status"] for e in hist] == ["pending_confirmation", "granted"], hist
        assert hist[1]["collection_method"] == "double_opt_in", hist[1]
        ev = hist[1].get("evidence") or {}
        assert ev.get("pending_receipt_id") == receipt["receipt_id"], hist[1]
        # Audited as the person's act, with the confirmation's id.
        rows = srv.audit_rows("action = ?", ("customer.confirm",))
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["actor"] == "customer" and row["record_id"] == cid and row["decision"] == "allow", row
        assert row["reason"] == "confirmed", row
        assert tok not in repr(srv.audit_rows()) and BOB["email"] not in repr(srv.audit_rows())
        # A link confirms once.
        st, page = confirm_page(srv, tok, "POST")
        assert st == 403, st
    finally:
        srv.close()


def test_a_withdrawal_before_the_click_wins_and_a_forged_link_confirms_nothing():
    srv = optin_server()
    try:
        cid = srv.create_contact(**BOB)
        grant(srv, cid)
        _, tok = confirmation_mail(srv)
        st, out = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                           json={"channel": "email", "status": "withdrawn", "source": "phone-call"})
        assert st == 200, out
        st, _ = confirm_page(srv, tok, "POST")
        assert st == 403
        assert srv.check("marketing", "email", contact_id=cid)["reason"] == "withdrawn"
        forged = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
        assert confirm_page(srv, forged)[0] == 403 and confirm_page(srv, forged, "POST")[0] == 403
        assert confirm_page(srv, "not-a-token")[0] == 403
    finally:
        srv.close()


def test_a_confirmation_link_expires():
    srv = optin_server()
    try:
        cid = srv.create_contact(**BOB)
        grant(srv, cid)
        _, tok = confirmation_mail(srv)
        srv.stop()
        # Eight days later: past OPTIN_TTL_DAYS (7).
        srv.env["CONSENTD_TEST_CLOCK_OFFSET_S"] = str(8 * 86400)
        srv.env["CONSENTD_TEST_FAULTS"] = "1"
        srv.start()
        assert confirm_page(srv, tok)[0] == 403
        assert confirm_page(srv, tok, "POST")[0] == 403
        assert srv.check("marketing", "email", contact_id=cid)["reason"] == "pending_confirmation"
    finally:
        srv.close()


def test_only_email_grants_of_a_double_opt_in_purpose_wait_and_a_confirmed_grant_is_not_asked_again():
    srv = optin_server()
    try:
        cid = srv.create_contact(**BOB)
        assert grant(srv, cid, channel="sms")["status"] == "granted"
        assert srv.check("marketing", "sms", contact_id=cid)["allowed"] is True
        grant(srv, cid)
        _, tok = confirmation_mail(srv)
        assert confirm_page(srv, tok, "POST")[0] == 200
        # Renewing a confirmed grant asks nothing again.
        assert grant(srv, cid)["status"] == "granted"
        assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    finally:
        srv.close()


def test_the_confirmation_page_and_mail_speak_chinese_when_asked():
    srv = optin_server()
    try:
        cid = srv.create_contact(**BOB)
        grant(srv, cid)
        _, tok = confirmation_mail(srv)
        st, page = confirm_page(srv, tok, lang="zh-CN")
        assert st == 200 and '<html lang="zh-CN">' in page and "确认您的订阅" in page, page
        assert "仅在您同意的情况下" in page  # the policy's description_zh
        st, page = confirm_page(srv, tok, "POST", lang="zh-CN")
        assert st == 200 and "谢谢：已确认" in page, page
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
