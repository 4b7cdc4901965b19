"""Customer self-service over HTTPS: preference links, the preference centre,
one-click unsubscribe (RFC 8058), Global Privacy Control, data download and
erasure. One scenario each, as the customer (or their mail provider) does it."""
import base64
import json
import os
import re
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, cli, run  # noqa: E402

BOB = {"email": "bob.customer@example.org", "name": "Bob Customer", "phone": "+44 20 7946 0999",
       "income": 54321, "collected_for": ["service", "marketing"], "source": "shop-signup"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


def setup(srv, scope=None, manage=False, **fields):
    """A contact who said yes to marketing email, and a preference link: an
    opt-out link from marketing, or a manage link (grant, download, erase)
    from admin."""
    cid = srv.create_contact(**dict(BOB, **fields))
    srv.set_consent(cid, "marketing", "email", "granted")
    if manage:
        # A manage link is mailed to the person, never returned: the token
        # comes from the development mail folder.
        link, tok = srv.manage_link(cid, **({"scope": scope} if scope else {}))
        return cid, link, tok
    link = make_link(srv, cid, scope=scope)
    return cid, link, link["url"].rsplit("/", 1)[1]


def make_link(srv, cid, token="marketing", scope=None, **body):
    if scope is not None:
        body["scope"] = scope
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token=token,
                       json=body if body else None)
    assert st == 201, (st, out)
    return out


def page(srv, tok, headers=None, query=""):
    st, hdrs, data = srv.raw("GET", f"/p/{tok}{query}", headers=headers or {})
    return st, hdrs, data.decode()


def csrf_of(html):
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def post_form(srv, path, fields, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    st, hdrs, data = srv.raw("POST", path, body=urllib.parse.urlencode(fields).encode(), headers=h)
    return st, hdrs, data


def db_counts(srv):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    out = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
           for t in ("consent", "consent_event", "suppression", "contact_field", "preference_link")}
    con.close()
    return out


def consent_of(srv, cid, purpose, channel):
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert st == 200, body
    for c in body["consents"]:
        if c["purpose"] == purpose and c["channel"] == channel:
            return c
    return None


def test_staff_create_a_link_that_does_not_reveal_the_contact_id(srv):
    cid = srv.create_contact(**BOB)
    link = make_link(srv, cid, ttl_days=30)
    assert link["url"].startswith("https://") and "/p/" in link["url"], link
    assert link["unsubscribe_url"].endswith("/v1/unsubscribe/" + link["url"].rsplit("/", 1)[1])
    assert link["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    tok = link["url"].rsplit("/", 1)[1]
    assert cid not in tok
    payload = tok.split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert cid.encode() not in raw and base64.urlsafe_b64decode(cid + "==") not in raw
    # The auditor may not; an unknown contact is 404; an unknown scope 422.
    st, body = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="auditor")
    assert_problem(st, body, 403)
    st, body = srv.call("POST", "/v1/contacts/AAAAAAAAAAAAAAAAAAAAAA/preference-link", token="admin")
    assert_problem(st, body, 404)
    st, body = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                        json={"scope": "nonsense"})
    assert_problem(st, body, 422)
    st, body = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                        json={"ttl_days": 9999})
    assert_problem(st, body, 400)


def test_customer_withdraws_marketing_on_the_page_and_the_next_check_is_denied(srv):
    cid, link, tok = setup(srv)
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    st, hdrs, html = page(srv, tok)
    assert st == 200, html
    assert hdrs["content-security-policy"] == CSP
    assert hdrs["content-type"].startswith("text/html")
    assert "Marketing" in html and "only if you said yes" in html  # the policy's description
    assert "Your consent" in html  # legal basis
    assert "Given on" in html and "<script" not in html
    st, hdrs, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "set",
                                                "purpose": "marketing", "channel": "email",
                                                "status": "withdrawn"})
    assert st == 303 and hdrs["location"].startswith(f"/p/{tok}?done=saved"), (st, hdrs)
    chk = srv.check("marketing", "email", contact_id=cid)
    assert chk["allowed"] is False and chk["reason"] == "withdrawn", chk
    st, _, html = page(srv, tok, query="?done=saved")
    assert "Your choice has been saved." in html
    rows = srv.audit_rows("action = 'customer.consent'")
    assert len(rows) == 1 and rows[0]["actor"] == "customer" and rows[0]["role"] == "customer", rows
    assert rows[0]["record_id"] == cid and rows[0]["decision"] == "allow"
    for r in srv.audit_rows("actor = 'customer'"):
        assert r["client"].startswith("h:") and "127.0.0.1" not in r["client"], r


def test_one_click_unsubscribe_form_encoded_as_a_mail_provider_sends_it(srv):
    cid, link, tok = setup(srv)
    path = urllib.parse.urlsplit(link["unsubscribe_url"]).path
    # Exactly what RFC 8058 section 3.1 shows: no cookies, no auth, this body.
    st, _, data = srv.raw("POST", path, body=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, data
    chk = srv.check("marketing", "email", contact_id=cid)
    assert chk["allowed"] is False and chk["reason"] in ("suppressed", "withdrawn"), chk
    assert consent_of(srv, cid, "marketing", "email")["status"] == "withdrawn"
    chk = srv.check("marketing", "email", email=BOB["email"])
    assert chk["allowed"] is False, chk
    before = db_counts(srv)
    st, _, _ = srv.raw("POST", path, body=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200
    assert db_counts(srv) == before  # idempotent
    # Service mail (contract) still flows.
    assert srv.check("service", "email", contact_id=cid, token="admin")["allowed"] is True


def test_one_click_unsubscribe_multipart_as_a_mail_provider_sends_it(srv):
    cid, link, tok = setup(srv)
    path = urllib.parse.urlsplit(link["unsubscribe_url"]).path
    boundary = "----consentdTestBoundary7MA4YWxk"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
            f"One-Click\r\n--{boundary}--\r\n").encode()
    st, _, data = srv.raw("POST", path, body=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert st == 200, data
    chk = srv.check("marketing", "email", contact_id=cid)
    assert chk["allowed"] is False, chk
    # A POST without the one-click field changes nothing.
    cid2, link2, _ = setup(srv, email="other@example.org", phone="+44 20 7946 0111")
    path2 = urllib.parse.urlsplit(link2["unsubscribe_url"]).path
    st, _, _ = srv.raw("POST", path2, body=b"foo=bar",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 400
    assert srv.check("marketing", "email", contact_id=cid2)["allowed"] is True


def test_get_on_the_unsubscribe_url_changes_nothing(srv):
    cid, link, tok = setup(srv)
    path = urllib.parse.urlsplit(link["unsubscribe_url"]).path
    before = db_counts(srv)
    for _ in range(3):  # a link scanner, a preview, the person
        st, hdrs, data = srv.raw("GET", path, headers={"Sec-GPC": "1"})
        assert st == 200, data
        html = data.decode()
        assert 'method="post"' in html and 'name="List-Unsubscribe" value="One-Click"' in html
        assert hdrs["content-security-policy"] == CSP
    assert db_counts(srv) == before
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True


def invalid_page(srv, tok):
    st, hdrs, data = srv.raw("GET", f"/p/{tok}")
    assert st == 403, (st, data)
    assert hdrs["content-type"].startswith("text/html")
    return data


def test_a_forged_token_gets_the_same_403_page_as_no_contact(srv):
    cid, link, tok = setup(srv)
    payload, mac = tok.split(".")
    forged_mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    a = invalid_page(srv, f"{payload}.{forged_mac}")
    # A token for a link id that never existed, and a token with an altered id.
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[3] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    b = invalid_page(srv, f"{altered}.{mac}")
    c = invalid_page(srv, "x" * 40)
    d = invalid_page(srv, "short")  # malformed: refused the same way, not with a 404
    assert a == b == c == d
    assert b"does not work" in a and cid.encode() not in a
    rows = srv.audit_rows("action = 'customer.link'")
    assert len(rows) == 4 and all(r["decision"] == "deny" and r["record_id"] == "" for r in rows), rows
    st, _, _ = post_form(srv, f"/v1/unsubscribe/{payload}.{forged_mac}",
                         {"List-Unsubscribe": "One-Click"})
    assert st == 403
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True


def test_an_expired_token_gets_the_same_403_page(srv):
    cid, link, tok = setup(srv)
    forged = invalid_page(srv, tok[:-2] + ("AA" if tok[-2:] != "AA" else "BA"))
    st, _, _ = page(srv, tok)
    assert st == 200
    con = sqlite3.connect(srv.db)
    con.execute("UPDATE preference_link SET expires_us = 1000000 WHERE id = ?", (link["link_id"],))
    con.commit()
    con.close()
    assert invalid_page(srv, tok) == forged
    # The page is gone, but an opt-out link keeps unsubscribing (RFC 8058;
    # test_campaign.py has the whole story).
    st, _, _ = post_form(srv, f"/v1/unsubscribe/{tok}", {"List-Unsubscribe": "One-Click"})
    assert st == 200
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is False
    rows = srv.audit_rows("action = 'customer.link'")
    assert rows and all(r["record_id"] == "" for r in rows)


def test_a_revoked_token_gets_the_same_403_page(srv):
    cid, link, tok = setup(srv)
    other = make_link(srv, cid)
    other_tok = other["url"].rsplit("/", 1)[1]
    forged = invalid_page(srv, tok[:-2] + ("AA" if tok[-2:] != "AA" else "BA"))
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link/{link['link_id']}",
                        token="marketing")
    assert st == 200, body
    assert invalid_page(srv, tok) == forged
    assert page(srv, other_tok)[0] == 200  # only that one
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link/{link['link_id']}",
                        token="marketing")
    assert_problem(st, body, 404)
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link", token="admin")
    assert st == 200, body
    assert invalid_page(srv, other_tok) == forged


def test_a_replayed_form_or_one_without_its_csrf_value_changes_nothing(srv):
    cid, link, tok = setup(srv)
    _, _, html = page(srv, tok)
    form = {"action": "set", "purpose": "marketing", "channel": "email", "status": "withdrawn"}
    other = make_link(srv, cid)["url"].rsplit("/", 1)[1]
    before = db_counts(srv)
    st, _, data = post_form(srv, f"/p/{tok}", form)
    assert st == 403 and b"Please try again" in data, (st, data)
    st, _, data = post_form(srv, f"/p/{tok}", dict(form, csrf="A" * 48))
    assert st == 403
    # A CSRF value from another link's page is refused too.
    _, _, other_html = page(srv, other)
    st, _, _ = post_form(srv, f"/p/{tok}", dict(form, csrf=csrf_of(other_html)))
    assert st == 403
    assert db_counts(srv) == before
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    csrf = csrf_of(html)
    st, _, _ = post_form(srv, f"/p/{tok}", dict(form, csrf=csrf))
    assert st == 303
    srv.set_consent(cid, "marketing", "email", "granted")
    st, _, _ = post_form(srv, f"/p/{tok}", dict(form, csrf=csrf))  # replayed
    assert st == 403
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    reasons = [r["reason"] for r in srv.audit_rows("action = 'customer.form'")]
    assert reasons == ["csrf_invalid", "csrf_invalid", "csrf_invalid", "csrf_replayed"], reasons


def test_global_privacy_control_records_an_opt_out_of_sale_and_sharing(srv):
    cid, link, tok = setup(srv, manage=True, collected_for=["service", "marketing", "partner_sharing"])
    srv.set_consent(cid, "partner_sharing", None, "granted")
    st, _, html = page(srv, tok, headers={"Sec-GPC": "1"})
    assert st == 200
    assert "Global Privacy Control" in html
    c = consent_of(srv, cid, "partner_sharing", "")
    assert c["status"] == "withdrawn" and c["collection_method"] == "gpc", c
    # Marketing is not sale or sharing: untouched.
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    # Trying to switch sharing back on while the browser still says no is refused.
    st, hdrs, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "set",
                                                "purpose": "partner_sharing", "channel": "",
                                                "status": "granted"}, headers={"Sec-GPC": "1"})
    assert st == 303 and "gpc_blocked" in hdrs["location"], hdrs
    assert consent_of(srv, cid, "partner_sharing", "")["status"] == "withdrawn"
    # A second visit records nothing new.
    before = db_counts(srv)
    page(srv, tok, headers={"Sec-GPC": "1"})
    assert db_counts(srv) == before


def test_download_my_data_contains_the_accesses_from_the_audit_trail(srv):
    cid, link, tok = setup(srv, manage=True)
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=marketing", token="marketing")
    assert st == 200, body
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=care", token="marketing")
    assert st == 403
    _, _, html = page(srv, tok)
    st, hdrs, data = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "download"})
    assert st == 200, data
    assert "attachment" in hdrs["content-disposition"]
    out = json.loads(data)
    assert out["contact"]["id"] == cid
    assert out["contact"]["fields"]["email"] == BOB["email"]
    assert out["contact"]["fields"]["income"] == BOB["income"]
    assert any(c["purpose"] == "marketing" and c["status"] == "granted" for c in out["consents"])
    assert len(out["consent_history"]) >= 1
    reads = [a for a in out["accesses"] if a["action"] == "contacts.read"]
    assert any(a["role"] == "marketing" and a["purpose"] == "marketing" and a["decision"] == "allowed"
               for a in reads), reads
    assert any(a["purpose"] == "care" and a["decision"] == "denied" for a in reads), reads
    assert any(a["action"] == "customer.view" and a["by"] == "you" for a in out["accesses"])
    assert "suppressions" in out
    rows = srv.audit_rows("action = 'customer.export'")
    assert len(rows) == 1 and "email" in rows[0]["fields"] and BOB["email"] not in json.dumps(
        [{k: v for k, v in r.items() if not isinstance(v, bytes)} for r in srv.audit_rows()])


def test_erasure_asks_for_confirmation_then_crypto_shreds(srv):
    cid, link, tok = setup(srv, manage=True)
    _, _, html = page(srv, tok)
    st, _, data = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "erase_request"})
    assert st == 200, data
    confirm = data.decode()
    assert 'name="action" value="erase_confirm"' in confirm and "cannot be undone" in confirm
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200, body  # nothing happened yet
    # Without ticking the box: nothing happens.
    st, _, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(confirm), "action": "erase_confirm"})
    assert st == 400
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200, body
    _, _, html = page(srv, tok)
    _, _, data = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "erase_request"})
    st, _, data = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(data.decode()), "action": "erase_confirm",
                                                "confirm": "yes"})
    assert st == 200 and b"erased" in data, data
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert_problem(st, body, 410)
    chk = srv.check("marketing", "email", email=BOB["email"])
    assert chk["allowed"] is False, chk
    invalid_page(srv, tok)
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    assert con.execute("SELECT count(*) FROM contact_field WHERE contact_id=?", (cid,)).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM preference_link WHERE contact_id=? AND revoked_us IS NULL",
                       (cid,)).fetchone()[0] == 0
    con.close()
    rows = srv.audit_rows("action = 'customer.erase'")
    assert len(rows) == 1 and rows[0]["decision"] == "allow" and rows[0]["actor"] == "customer"


def test_withdraw_everything_withdraws_every_consent_and_suppresses(srv):
    cid, link, tok = setup(srv, manage=True)
    srv.set_consent(cid, "marketing", "sms", "granted")
    _, _, html = page(srv, tok)
    # The page's button asks first; the confirmation page changes nothing.
    assert 'value="withdraw_all_request"' in html and 'value="withdraw_all"' not in html
    st, hdrs, data = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "withdraw_all_request"})
    confirm = data.decode()
    assert st == 200 and "Withdraw every consent?" in confirm, confirm[:300]
    assert consent_of(srv, cid, "marketing", "email")["status"] == "granted"
    # Without confirm=yes nothing happens either.
    st, _, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(page(srv, tok)[2]), "action": "withdraw_all"})
    assert st == 400 and consent_of(srv, cid, "marketing", "email")["status"] == "granted"
    assert srv.audit_rows("action = 'customer.form'")[-1]["reason"] == "not_confirmed"
    assert 'name="confirm" value="yes"' in confirm and 'value="withdraw_all"' in confirm
    st, hdrs, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(confirm), "action": "withdraw_all",
                                               "confirm": "yes"})
    assert st == 303, hdrs
    for ch in ("email", "sms"):
        assert consent_of(srv, cid, "marketing", ch)["status"] == "withdrawn"
        assert srv.check("marketing", ch, contact_id=cid)["allowed"] is False
    assert srv.check("service", "email", contact_id=cid, token="admin")["allowed"] is True
    # Giving consent again on the page lifts the person's own withdrawal.
    _, _, html = page(srv, tok)
    st, _, _ = post_form(srv, f"/p/{tok}", {"csrf": csrf_of(html), "action": "set", "purpose": "marketing",
                                             "channel": "email", "status": "granted"})
    assert st == 303
    assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
    assert srv.check("marketing", "sms", contact_id=cid)["allowed"] is False
    srv.stop()
    code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0, (code, out, err)


def test_a_link_minted_by_marketing_can_only_opt_out(srv):
    # The token is a bearer credential and its creator holds it: a link from a
    # role that may not itself grant, read every field or erase can withdraw,
    # and nothing more.
    cid, link, tok = setup(srv)
    assert link["capability"] == "optout"
    st, hdrs, html = page(srv, tok)
    assert st == 200
    assert 'name="action" value="download"' not in html and 'value="erase_request"' not in html, html
    assert 'name="status" value="granted"' not in html
    assert 'value="withdraw_all_request"' in html and 'name="status" value="withdrawn"' in html
    for form in ({"action": "download"}, {"action": "erase_request"},
                 {"action": "set", "purpose": "marketing", "channel": "sms", "status": "granted"}):
        html = page(srv, tok)[2]  # CSRF values are single-use
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        st, _, body = post_form(srv, f"/p/{tok}", dict(form, csrf=csrf))
        assert st == 403, (form, st)
        assert b"Quarrington" not in body and b"bob" not in body.lower(), body[:300]
    assert srv.check("marketing", "sms", contact_id=cid)["allowed"] is False
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st == 200, body  # not erased
    rows = srv.audit_rows("action = 'customer.form' AND reason = 'link_capability'")
    assert len(rows) == 3, rows
    assert all(json.loads(r["detail"])["link_created_by"] == "marketing-1" for r in rows), rows


def test_one_link_posting_in_a_loop_cannot_block_the_forms_of_everyone(srv):
    # Spent form values are rows (kept until they expire), not slots of a
    # table in memory: no number of posts through one link fills anything.
    cid, link, tok = setup(srv)
    other = make_link(srv, srv.create_contact(email="other@example.org", collected_for=["marketing"]))
    other_tok = other["url"].rsplit("/", 1)[1]

    def post(t, action):
        html = page(srv, t)[2]
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        return post_form(srv, f"/p/{t}", {"action": action, "csrf": csrf, "confirm": "yes"})[0]
    codes = [post(tok, "download") for _ in range(40)]  # refused (opt-out), but each uses a value
    assert codes == [403] * 40, codes
    assert post(other_tok, "withdraw_all") == 303  # everyone else is still served


def test_only_a_role_that_may_erase_can_mint_a_manage_link(srv):
    cid = srv.create_contact(**BOB)
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing",
                       json={"capability": "manage"})
    assert st == 403 and out["reason"] == "role_denied", out
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="support",
                       json={"capability": "manage"})
    assert st == 403, out
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage"})
    assert st == 202 and out["capability"] == "manage", out
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "everything"})
    assert st == 400, out


def test_staff_asking_for_a_manage_link_get_202_and_the_link_goes_to_the_person_by_mail(srv):
    cid = srv.create_contact(**BOB)
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage"})
    assert st == 202, out
    assert set(out) == {"link_id", "scope", "capability", "expires_at", "delivery"}, out
    assert out["delivery"] == "mail" and out["capability"] == "manage", out
    msg = srv.mailed(out["link_id"])
    assert msg["To"].addresses[0].addr_spec == "bob.customer@example.org", msg["To"]
    # Staff did not say which language: the default, English.
    assert msg["Subject"] == "Your privacy choices" and msg["Content-Language"] == "en", msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    tok = srv.mailed_token(out["link_id"])
    assert tok not in repr(out)
    # The mailed link opens the manage page (download and erase offered).
    st, _, html = page(srv, tok)
    assert st == 200 and 'value="download"' in html, html[:400]
    # The token is in the mail only: not in the audit, not in the outbox row.
    assert tok not in repr(srv.audit_rows())
    for _ in range(100):  # the worker marks it sent just after writing it
        con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        rows = con.execute("SELECT * FROM mail_outbox").fetchall()
        con.close()
        if rows and rows[0][6] is not None:
            break
        __import__("time").sleep(0.05)
    assert len(rows) == 1 and rows[0][6] is not None, rows  # sent_us set
    assert tok not in repr(rows) and "bob.customer" not in repr(rows), rows
    assert "bob.customer" not in "".join(srv._out)
    entry = srv.audit_rows("action = 'links.create'")[-1]
    assert json.loads(entry["detail"])["delivery"] == "mail", entry
    assert "Anyone with this link can act for you" in text


def test_a_manage_link_for_a_contact_without_email_is_refused_and_nothing_is_minted(srv):
    cid = srv.create_contact(name="No Mail", phone="+44 20 7946 0111", collected_for=["service"])
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage"})
    assert_problem(st, out, 422)
    assert out["reason"] == "no_email", out
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    n = con.execute("SELECT count(*) FROM preference_link").fetchone()[0]
    m = con.execute("SELECT count(*) FROM mail_outbox").fetchone()[0]
    con.close()
    assert (n, m) == (0, 0), (n, m)


def test_a_config_naming_a_mail_folder_gets_the_mail_written_there(srv):
    srv.stop()
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        saved = f.read()
    cfg = json.loads(saved)
    cfg["mail"] = {"dir": "outgoing"}
    with open(conf, "w") as f:
        json.dump(cfg, f)
    srv.start()
    cid = srv.create_contact(**BOB)
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="admin",
                       json={"capability": "manage"})
    assert st == 202, out
    folder = os.path.join(srv.data, "outgoing")
    for _ in range(200):
        if os.path.isdir(folder) and any(n.endswith(".eml") for n in os.listdir(folder)):
            break
        __import__("time").sleep(0.05)
    names = [n for n in os.listdir(folder) if n.endswith(".eml")]
    assert len(names) == 1, names
    assert oct(os.stat(os.path.join(folder, names[0])).st_mode & 0o777) == "0o600"


def test_accept_language_zh_cn_renders_the_page_in_chinese(srv):
    cid, link, tok = setup(srv)
    st, _, html = page(srv, tok, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert st == 200
    assert '<html lang="zh-CN">' in html
    assert "您的隐私选择" in html and "仅在您同意的情况下" in html  # the policy's description_zh
    assert "撤回" in html
    st, _, html = page(srv, tok, headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.1"})
    assert '<html lang="en">' in html and "Your privacy choices" in html
    data = invalid_page(srv, "y" * 40).decode()
    assert "This link does not work" in data



def request_link(srv, email, headers=None, client=None):
    h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    st, _, data = srv.raw("POST", "/p/request", body=urllib.parse.urlencode({"email": email}).encode(),
                          headers=h, client=client)
    return st, data.decode()


def eml_count(srv):
    folder = os.path.join(srv.data, "mail-outbox")
    return len([n for n in os.listdir(folder) if n.endswith(".eml")]) if os.path.isdir(folder) else 0


def test_a_person_with_no_link_asks_for_one_by_email_and_it_arrives_by_mail(srv):
    cid = srv.create_contact(**BOB)
    srv.set_consent(cid, "marketing", "email", "granted")
    st, hdrs, data = srv.raw("GET", "/p/request")
    html = data.decode()
    assert st == 200 and 'name="email"' in html and 'for="email"' in html, html
    st, _, zh = srv.raw("GET", "/p/request", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="zh-CN">' in zh.decode() and "电子邮件地址" in zh.decode()
    st, page_text = request_link(srv, "  Bob.Customer@Example.org ")
    assert st == 200 and "Check your email" in page_text, page_text
    entry = srv.audit_rows("action = 'customer.link_request'")[-1]
    assert entry["actor"] == "customer" and entry["reason"] == "mailed" and entry["record_id"] == cid, entry
    detail = json.loads(entry["detail"])
    assert detail["address"].startswith("h:") and detail["capability"] == "manage", detail
    assert "bob" not in repr(entry).lower(), entry
    tok = srv.mailed_token(detail["link_id"])
    # The person's own link reaches every purpose and may download.
    st, _, html = page(srv, tok)
    assert st == 200 and 'value="download"' in html, html[:300]
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    st, hdrs, data = post_form(srv, f"/p/{tok}", {"action": "download", "csrf": csrf})
    assert st == 200 and b"bob.customer@example.org" in data, (st, data[:200])
    entries = srv.audit_rows("action = 'customer.export'")
    assert json.loads(entries[-1]["detail"])["link_created_by"] == "customer", entries[-1]


def test_an_unknown_address_gets_the_same_answer_and_no_mail_is_sent(srv):
    srv.create_contact(**BOB)
    st1, known = request_link(srv, "bob.customer@example.org")
    st2, unknown = request_link(srv, "nobody.here@example.org")
    assert (st1, known) == (st2, unknown), (st1, st2)
    e = srv.audit_rows("action = 'customer.link_request'")
    assert [x["reason"] for x in e] == ["mailed", "no_match"], e
    assert e[1]["record_id"] == "" and "nobody" not in repr(e), e
    time_limit = __import__("time").monotonic() + 2
    while __import__("time").monotonic() < time_limit and eml_count(srv) < 1:
        __import__("time").sleep(0.05)
    __import__("time").sleep(0.8)  # a worker round or more: still one mail only
    assert eml_count(srv) == 1


def test_link_requests_are_rate_limited_per_address_and_per_client(srv):
    srv.create_contact(**BOB)
    answers = [request_link(srv, "bob.customer@example.org") for _ in range(4)]
    assert len({a for a in answers}) == 1 and answers[0][0] == 200, answers
    reasons = [x["reason"] for x in srv.audit_rows("action = 'customer.link_request'")]
    assert reasons == ["mailed"] * 3 + ["rate_limited_address"], reasons
    for _ in range(100):
        if eml_count(srv) >= 3:
            break
        __import__("time").sleep(0.05)
    __import__("time").sleep(0.6)
    assert eml_count(srv) == 3
    # 20 requests per client address per hour; the 21st is refused, audited.
    codes = [request_link(srv, f"someone{i}@example.org")[0] for i in range(16)]
    assert codes == [200] * 16, codes
    st, body = request_link(srv, "someone.else@example.org")
    assert st == 429 and "Too many requests" in body, (st, body[:200])
    last = srv.audit_rows("action = 'customer.link_request'")[-1]
    assert last["reason"] == "rate_limited_client" and last["decision"] == "deny", last


def test_a_link_request_without_an_email_address_is_a_400_problem_and_changes_nothing(srv):
    before = len(srv.audit_rows())
    for body, ctype in ((b"email=not-an-address", "application/x-www-form-urlencoded"),
                        (b"mail=a@example.org", "application/x-www-form-urlencoded"),
                        (b'{"email": "a@example.org"}', "application/json")):
        st, hdrs, data = srv.raw("POST", "/p/request", body=body, headers={"Content-Type": ctype})
        assert st == 400, (st, data[:200])
        assert_problem(st, json.loads(data), 400)
    assert len(srv.audit_rows()) == before
    assert eml_count(srv) == 0


ORG = {"name": "Acme Shoes Ltd", "postal_address": "1 High Street\nLondon EC1A 1AA",
       "privacy_policy_url": "https://acme.example/privacy", "contact_email": "privacy@acme.example"}


def with_config(srv, **keys):
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        cfg = json.load(f)
    cfg.update(keys)
    with open(conf, "w") as f:
        json.dump(cfg, f)


def test_the_organisation_from_the_config_is_on_every_customer_page_and_in_the_mail(srv):
    srv.stop()
    with_config(srv, organisation=ORG)
    srv.start()
    cid = srv.create_contact(**BOB)
    srv.set_consent(cid, "marketing", "email", "granted")
    link, tok = srv.manage_link(cid)
    optout = make_link(srv, cid)["url"].rsplit("/", 1)[1]
    pages = [page(srv, tok)[2], page(srv, tok, headers={"Accept-Language": "zh-CN"})[2],
             srv.raw("GET", "/p/request")[2].decode(), request_link(srv, "x@example.org")[1],
             page(srv, "A" * 20 + "." + "B" * 43)[2], srv.raw("GET", f"/v1/unsubscribe/{optout}")[2].decode()]
    for html in pages:
        assert "Acme Shoes Ltd" in html and "1 High Street, London EC1A 1AA" in html, html[:600]
        assert 'href="https://acme.example/privacy"' in html and 'href="mailto:privacy@acme.example"' in html
    assert "隐私政策" in pages[1] and "Privacy policy" in pages[0]
    msg = srv.mailed(link["link_id"])
    body = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    for v in ("Acme Shoes Ltd", "1 High Street\nLondon EC1A 1AA", "https://acme.example/privacy",
              "privacy@acme.example"):
        assert v in body, body
    html = msg.get_body(preferencelist=("html",)).get_content()
    for v in ("Acme Shoes Ltd", "1 High Street<br>London EC1A 1AA", 'href="https://acme.example/privacy"',
              'href="mailto:privacy@acme.example"'):
        assert v in html, html


def test_an_organisation_config_that_is_wrong_is_refused_at_start(srv):
    srv.stop()
    for bad, why in (({"privacy_policy_url": "http://acme.example/p"}, "must start with https://"),
                     ({"name": "x" * 300}, "at most 255 bytes"),
                     ({"contact_email": "nobody"}, "must be an email address"),
                     ({"name": "Acme\u0007"}, "control character"),
                     ({"website": "https://acme.example"}, "unknown key")):
        with_config(srv, organisation=bad)
        rc = srv.start(expect_fail=True)
        assert rc != 0 and why in srv.output, (bad, rc, srv.output)


def test_staff_creating_a_contact_for_an_erased_address_are_told_previously_erased_and_it_stays_suppressed(srv):
    cid = srv.create_contact(**BOB)
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert st == 200, body
    st, again = srv.call("POST", "/v1/contacts", token="admin", json=dict(BOB))
    assert st == 201 and again.get("previously_erased") is True, again
    entry = srv.audit_rows("action = 'contacts.create'")[-1]
    assert json.loads(entry["detail"]) == {"previously_erased": True}, entry
    # A staff create cannot lift the erasure suppression: a grant does not
    # make the returning address contactable.
    srv.set_consent(again["id"], "marketing", "email", "granted")
    out = srv.check("marketing", "email", contact_id=again["id"])
    assert out["allowed"] is False and out["reason"] == "suppressed", out
    st, fresh = srv.call("POST", "/v1/contacts", token="admin",
                         json={"email": "someone.new@example.org", "collected_for": ["service"]})
    assert st == 201 and "previously_erased" not in fresh, fresh


def test_the_page_offers_consent_only_for_purposes_the_data_was_collected_for(srv):
    cid = srv.create_contact(**dict(BOB, collected_for=["service"]))
    link, tok = srv.manage_link(cid)
    st, _, html = page(srv, tok)
    assert st == 200
    assert "We did not collect your data for this" in html, html
    assert not re.search(r'name="purpose" value="marketing">.{0,200}value="granted"', html, re.S), html
    st, _, zh = page(srv, tok, headers={"Accept-Language": "zh-CN"})
    assert "我们并非为此目的收集您的数据" in zh
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    st, _, _ = post_form(srv, f"/p/{tok}", {"action": "set", "purpose": "marketing", "channel": "email",
                                             "status": "granted", "csrf": csrf})
    assert st == 403, st
    entry = srv.audit_rows("action = 'customer.form'")[-1]
    assert entry["reason"] == "not_collected_for" and entry["decision"] == "deny", entry
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    n = con.execute("SELECT count(*) FROM consent_event WHERE contact_id = ?", (cid,)).fetchone()[0]
    con.close()
    assert n == 0, n  # nothing was recorded
    # Collected for marketing: offered, and marketing's compatible analytics too.
    cid2 = srv.create_contact(email="dana@example.org", collected_for=["service", "marketing"])
    _, tok2 = srv.manage_link(cid2)
    html2 = page(srv, tok2)[2]
    assert re.search(r'name="purpose" value="marketing">.{0,200}value="granted"', html2, re.S), html2
    assert re.search(r'name="purpose" value="analytics">.{0,200}value="granted"', html2, re.S), html2

if __name__ == "__main__":
    run(globals())
