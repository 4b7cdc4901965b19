"""Consent receipts (issue 16): every consent change has a receipt id, and
its receipt, in the shape of the Kantara Consent Receipt v1.1 (ISO/IEC TS
27560), is available to staff through the API and to the person from the
preference page. One scenario each."""
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, contains_value, run  # noqa: E402

CAROL = {"email": "carol.receipt@example.org", "name": "Carol Receipt", "income": 54321,
         "collected_for": ["service", "marketing"], "source": "shop-signup"}
KANTARA_KEYS = {"version", "jurisdiction", "consentTimestamp", "collectionMethod", "consentReceiptID",
                "language", "piiPrincipalId", "piiControllers", "policyUrl", "services", "sensitive",
                "spiCat"}


def org_server():
    srv = Server(start=False)
    path = os.path.join(srv.data, "consentd.conf")
    with open(path) as f:
        conf = json.load(f)
    conf["organisation"] = {"name": "Example Shop Ltd", "postal_address": "1 High Street\nLondon",
                            "privacy_policy_url": "https://shop.example/privacy",
                            "contact_email": "privacy@shop.example", "jurisdiction": "EU"}
    with open(path, "w") as f:
        json.dump(conf, f)
    srv.start()
    return srv


def check_receipt(r, cid, receipt_id):
    assert KANTARA_KEYS <= set(r), set(r) ^ KANTARA_KEYS
    assert r["version"] == "KI-CR-v1.1.0" and r["consentReceiptID"] == receipt_id, r
    assert r["piiPrincipalId"] == cid and r["jurisdiction"] == "EU", r
    assert r["piiControllers"][0]["piiController"] == "Example Shop Ltd", r
    assert r["piiControllers"][0]["email"] == "privacy@shop.example", r
    assert r["policyUrl"] == "https://shop.example/privacy", r
    (svc,) = r["services"]
    (p,) = svc["purposes"]
    assert p["consentType"] == "EXPLICIT" and p["thirdPartyDisclosure"] is False, p
    assert "2 - Contact" in p["piiCategory"] and "7 - Financial" in p["piiCategory"], p
    assert r["sensitive"] is True and r["spiCat"] == ["7 - Financial"], r
    assert isinstance(r["consentTimestamp"], int), r
    # The receipt names categories, never a value.
    blob = json.dumps(r, ensure_ascii=False)
    for v in (CAROL["email"], CAROL["name"], "54321"):
        assert not contains_value(blob, v), v


def test_staff_read_the_receipt_of_a_consent_change():
    srv = org_server()
    try:
        cid = srv.create_contact(**CAROL)
        rec = srv.set_consent(cid, "marketing", "email", "granted")
        st, r = srv.call("GET", f"/v1/contacts/{cid}/receipts/{rec['receipt_id']}", token="support")
        assert st == 200, (st, r)
        check_receipt(r, cid, rec["receipt_id"])
        assert r["collectionMethod"] == "recorded by our staff or systems", r
        assert r["consentd"]["status"] == "granted" and r["consentd"]["current"] is True, r
        # A later withdrawal has its own receipt; the grant's says it is no longer current.
        wd = srv.set_consent(cid, "marketing", "email", "withdrawn")
        st, old = srv.call("GET", f"/v1/contacts/{cid}/receipts/{rec['receipt_id']}", token="admin")
        assert st == 200 and old["consentd"]["current"] is False, old
        st, new = srv.call("GET", f"/v1/contacts/{cid}/receipts/{wd['receipt_id']}", token="admin")
        assert new["consentd"]["status"] == "withdrawn" and new["services"][0]["purposes"][0][
            "termination"].startswith("Ended on"), new
        rows = srv.audit_rows("action = 'receipts.read'")
        assert len(rows) == 3 and all(r["record_id"] == cid for r in rows), rows
    finally:
        srv.close()


def test_an_unknown_receipt_or_a_role_without_consents_read_is_refused(srv):
    cid = srv.create_contact(**CAROL)
    rec = srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("GET", f"/v1/contacts/{cid}/receipts/AAAAAAAAAAAAAAAAAAAAAA", token="admin")
    assert_problem(st, body, 404)
    other = srv.create_contact(email="someone.else@example.org", collected_for=["service"])
    st, body = srv.call("GET", f"/v1/contacts/{other}/receipts/{rec['receipt_id']}", token="admin")
    assert_problem(st, body, 404)  # a receipt is read through its own contact only
    st, body = srv.call("GET", f"/v1/contacts/{cid}/receipts/{rec['receipt_id']}", token="auditor")
    assert_problem(st, body, 403)


def page_form(srv, tok, fields, lang=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if lang:
        h["Accept-Language"] = lang
    return srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(fields).encode(), headers=h)


def test_the_person_downloads_a_receipt_from_the_preference_page_in_chinese():
    srv = org_server()
    try:
        cid = srv.create_contact(**CAROL)
        rec = srv.set_consent(cid, "marketing", "email", "granted")
        _, tok = srv.manage_link(cid)
        st, _, html = srv.raw("GET", f"/p/{tok}", headers={"Accept-Language": "zh-CN"})
        html = html.decode()
        assert st == 200 and "下载同意凭证" in html, html
        assert f'name="receipt_id" value="{rec["receipt_id"]}"' in html, html
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        st, hdrs, data = page_form(srv, tok, {"csrf": csrf, "action": "receipt",
                                              "receipt_id": rec["receipt_id"]}, lang="zh-CN")
        assert st == 200, data[:500]
        assert "attachment" in hdrs.get("content-disposition", ""), hdrs
        r = json.loads(data)
        check_receipt(r, cid, rec["receipt_id"])
        assert r["language"] == "zh-CN", r
        assert "撤回" in r["services"][0]["purposes"][0]["termination"], r
        # Someone else's receipt id through this link: refused, nothing shown.
        other = srv.create_contact(email="x.other@example.org", collected_for=["service", "marketing"])
        orec = srv.set_consent(other, "marketing", "email", "granted")
        st, _, html = srv.raw("GET", f"/p/{tok}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
        st, _, data = page_form(srv, tok, {"csrf": csrf, "action": "receipt", "receipt_id": orec["receipt_id"]})
        assert st == 404 and orec["receipt_id"].encode() not in data, (st, data[:300])
    finally:
        srv.close()


def test_an_opt_out_link_offers_no_receipt_download(srv):
    cid = srv.create_contact(**CAROL)
    srv.set_consent(cid, "marketing", "email", "granted")
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing", json={})
    assert st == 201, (st, out)
    tok = out["url"].rsplit("/", 1)[1]
    st, _, html = srv.raw("GET", f"/p/{tok}")
    assert st == 200 and b'value="receipt"' not in html, html[:500]


if __name__ == "__main__":
    run(globals())
