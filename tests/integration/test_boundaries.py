"""Purpose and role boundaries: who may widen what data is for, what reads
reveal of a record's plaintext attributes, how far a preference link reaches,
which names staff may take, which labels are stored in plaintext, and what
the audit trail says about a campaign list. One scenario each."""
import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_problem, cli, run  # noqa: E402

ANN = {"email": "ann.patient@example.org", "name": "Ann Patient", "phone": "+44 20 7946 0123",
       "collected_for": ["service", "marketing", "care"], "source": "clinic-desk", "owner": "rep-7"}


def contact_as(srv, cid, purpose="service", token="admin"):
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose={purpose}", token=token)
    assert st == 200, (st, body)
    return body


def collected_for(srv, cid):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    row = con.execute("SELECT collected_for FROM contact WHERE id = ?", (cid,)).fetchone()
    con.close()
    return row[0]


def last_entry(srv, action):
    rows = srv.audit_rows("action = ?", (action,))
    assert rows, action
    return rows[-1]


def counts(srv):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    out = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
           for t in ("contact", "consent", "consent_event", "suppression", "principal", "audit")}
    out["contacts"] = con.execute("SELECT group_concat(collected_for || '|' || source || '|' || owner, ';') "
                                  "FROM contact").fetchone()[0]
    con.close()
    return out


# ---- collected_for: narrowing is an update, widening a right of its own ----

def test_support_cannot_widen_collected_for_but_may_narrow_it(srv):
    cid = srv.create_contact(**dict(ANN, collected_for=["service"]))
    st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="support",
                        json={"collected_for": ["service", "marketing"]})
    assert_problem(st, body, 403)
    assert body.get("reason") == "purpose_widening_denied", body
    assert collected_for(srv, cid) == "service"
    e = last_entry(srv, "contacts.update")
    assert (e["decision"], e["reason"]) == ("deny", "purpose_widening_denied"), e
    assert json.loads(e["detail"]) == {"collected_for_old": "service",
                                       "collected_for_new": "service,marketing"}, e
    # Swapping one purpose for another widens too.
    cid2 = srv.create_contact(**dict(ANN, email="ann.two@example.org", collected_for=["service", "care"]))
    st, body = srv.call("PATCH", f"/v1/contacts/{cid2}", token="support", json={"collected_for": ["marketing"]})
    assert_problem(st, body, 403)
    # Narrowing stays allowed, and is recorded with both lists.
    st, body = srv.call("PATCH", f"/v1/contacts/{cid2}", token="support", json={"collected_for": ["care"]})
    assert st == 200, body
    assert collected_for(srv, cid2) == "care"
    e = last_entry(srv, "contacts.update")
    assert (e["decision"], e["reason"]) == ("allow", "updated"), e
    assert json.loads(e["detail"]) == {"collected_for_old": "service,care", "collected_for_new": "care"}, e


def test_admin_widens_collected_for_and_the_entry_records_old_and_new(srv):
    cid = srv.create_contact(**dict(ANN, collected_for=["service"]))
    st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin",
                        json={"collected_for": ["service", "marketing"]})
    assert st == 200, body
    assert contact_as(srv, cid)["collected_for"] == ["service", "marketing"]
    e = last_entry(srv, "contacts.update")
    assert (e["actor"], e["decision"], e["reason"]) == ("admin-1", "allow", "updated"), e
    assert json.loads(e["detail"]) == {"collected_for_old": "service",
                                       "collected_for_new": "service,marketing"}, e


# ---- reads reveal plaintext attributes only as the field policy allows ----

def test_reads_show_collected_for_source_and_owner_only_where_the_role_may_see_them(srv):
    cid = srv.create_contact(**ANN)
    srv.set_consent(cid, "marketing", "email", "granted")
    # marketing may not use care, and its fields name neither source nor owner.
    body = contact_as(srv, cid, purpose="marketing", token="marketing")
    assert body["collected_for"] == ["marketing"], body
    assert "source" not in body and "owner" not in body, body
    assert "care" not in json.dumps(body) and "clinic-desk" not in json.dumps(body), body
    e = last_entry(srv, "contacts.read")
    assert set(e["fields"].split(",")) == {"name", "email"}, e
    # support uses service and care, and sees the labels for service only.
    body = contact_as(srv, cid, purpose="service", token="support")
    assert body["collected_for"] == ["service", "care"], body
    assert (body["source"], body["owner"]) == ("clinic-desk", "rep-7"), body
    assert {"source", "owner"} <= set(last_entry(srv, "contacts.read")["fields"].split(","))
    srv.set_consent(cid, "care", "phone", "granted")
    body = contact_as(srv, cid, purpose="care", token="support")
    assert "source" not in body and "owner" not in body, body
    # admin sees everything.
    body = contact_as(srv, cid, purpose="service", token="admin")
    assert body["collected_for"] == ["service", "marketing", "care"], body
    assert (body["source"], body["owner"]) == ("clinic-desk", "rep-7"), body


# ---- preference links reach only their creator's purposes ----

def make_link(srv, cid, token="marketing", **body):
    if body.get("capability") == "manage":  # mailed to the person, never returned
        return srv.manage_link(cid, token=token, **{k: v for k, v in body.items() if k != "capability"})
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token=token, json=body or None)
    assert st == 201, (st, out)
    return out, out["url"].rsplit("/", 1)[1]


def page(srv, tok):
    st, _, data = srv.raw("GET", f"/p/{tok}")
    assert st == 200, (st, data[:300])
    return data.decode()


def post_form(srv, tok, fields):
    html = page(srv, tok)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    st, _, data = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(dict(fields, csrf=csrf)).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st, data


def status_of(srv, cid, purpose, channel):
    st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    assert st == 200, body
    return next(c["status"] for c in body["consents"] if c["purpose"] == purpose and c["channel"] == channel)


def test_a_marketing_opt_out_link_neither_shows_nor_withdraws_a_care_consent(srv):
    cid = srv.create_contact(**ANN)
    srv.set_consent(cid, "care", "phone", "granted")
    srv.set_consent(cid, "marketing", "email", "granted")
    _, tok = make_link(srv, cid)
    html = page(srv, tok)
    assert 'id="p-marketing"' in html and 'id="p-care"' not in html and 'id="p-service"' not in html, html
    st, _ = post_form(srv, tok, {"action": "set", "purpose": "care", "channel": "phone", "status": "withdrawn"})
    assert st == 403, st
    assert last_entry(srv, "customer.form")["reason"] == "link_scope"
    st, _ = post_form(srv, tok, {"action": "withdraw_all", "confirm": "yes"})
    assert st == 303, st
    assert status_of(srv, cid, "marketing", "email") == "withdrawn"
    assert status_of(srv, cid, "care", "phone") == "granted"
    # One-click unsubscribe through the same link leaves care alone too.
    st, _, _ = srv.raw("POST", f"/v1/unsubscribe/{tok}", body=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200
    assert status_of(srv, cid, "care", "phone") == "granted"
    assert srv.check("care", "phone", contact_id=cid, token="admin")["allowed"] is True
    # A link scoped to a purpose the role may not use is not minted at all.
    st, body = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing", json={"scope": "care"})
    assert_problem(st, body, 403)


def test_a_role_may_revoke_only_links_it_could_have_minted(srv):
    cid = srv.create_contact(**ANN)
    manage, mtok = make_link(srv, cid, token="admin", capability="manage")
    care, ctok = make_link(srv, cid, token="support", scope="care")
    own, otok = make_link(srv, cid, token="marketing")
    for link in (manage, care):
        st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link/{link['link_id']}", token="marketing")
        assert_problem(st, body, 403)
        assert body.get("reason") == "role_denied", body
    # "Revoke all" ends only the links the role could have minted.
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link", token="marketing")
    assert st == 200, body
    assert json.loads(last_entry(srv, "links.revoke")["detail"]) == {"link_id": "all", "revoked": 1}
    assert srv.raw("GET", f"/p/{otok}")[0] == 403
    assert srv.raw("GET", f"/p/{mtok}")[0] == 200 and srv.raw("GET", f"/p/{ctok}")[0] == 200
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link/{manage['link_id']}", token="admin")
    assert st == 200, body
    assert srv.raw("GET", f"/p/{mtok}")[0] == 403


# ---- staff names ----

HOSTILE = ["a\tb", "a\nb", "a\rb", "customer", "Operator", "SYSTEM", " lead", "trail ", "",
           "x" * 65, "bidi\u202eevil", "zero\u200fwidth", "line\u2028sep", "del\x7f"]
ALLOWED = ['crm "nightly" sync', "Smith, Jane", "Zoë Ångström", "=HYPERLINK(1)", "-rm", "@at", "+plus",
           "back\\slash", "名字", "x" * 64]


def test_staff_names_that_would_break_or_spoof_the_trail_are_refused(srv):
    before = counts(srv)
    for name in HOSTILE:
        code, out, err = cli("token", "create", "--data", srv.data, "--role", "admin", "--name", name, check=False)
        assert code == 3, (name, code, out, err)
        assert out == "", (name, out)
    assert counts(srv) == before


def test_allowed_hostile_looking_names_round_trip_through_query_and_exports(srv):
    tokens = {name: srv.token("support", name) for name in ALLOWED}
    cid = srv.create_contact(**ANN)
    for name, tok in tokens.items():
        st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token=tok)
        assert st == 200, (name, body)
    auditor = {"Authorization": f"Bearer {srv.tokens['auditor']}"}
    for name in ALLOWED:
        q = urllib.parse.urlencode({"actor": name})
        st, body = srv.call("GET", f"/v1/audit?{q}", token="auditor")
        assert st == 200, (name, body)
        assert [e["actor"] for e in body["entries"]] == [name], (name, body)
        st, _, data = srv.raw("GET", f"/v1/audit/export?format=ndjson&{q}", headers=auditor)
        assert st == 200, (name, data[:300])
        lines = [json.loads(line) for line in data.decode().splitlines() if line]
        assert [e["actor"] for e in lines] == [name], (name, lines)
    st, _, data = srv.raw("GET", "/v1/audit/export?format=csv", headers=auditor)
    assert st == 200, data[:300]
    table = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    actors = [r["actor"] for r in table if r["action"] == "contacts.read"]
    # A cell that starts like a formula is kept as text with a guard quote.
    want = [("'" + n) if n[0] in "=+-@" else n for n in ALLOWED]
    assert actors == want, actors
    srv.stop()
    code, out, err = cli("audit", "export", "--data", srv.data, "--format", "ndjson", check=False)
    assert code == 0, (code, err)
    exported = {json.loads(line)["actor"] for line in out.splitlines() if line}
    assert set(ALLOWED) <= exported
    code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0, (code, out, err)


# ---- plaintext labels ----

BAD_LABELS = ["has space", "tab\there", "new\nline", "quote\"", "comma,here", "x" * 129, "", "zoë"]


def test_plaintext_labels_must_be_identifiers_and_a_bad_one_changes_nothing(srv):
    cid = srv.create_contact(**dict(ANN, source="web:signup/v2+promo@2026", owner="rep_7.north-east"))
    srv.set_consent(cid, "marketing", "email", "granted", notice_version="2024-06-01",
                    collection_method="web_form")
    before = counts(srv)
    for bad in BAD_LABELS:
        for key in ("source", "owner"):
            st, body = srv.call("POST", "/v1/contacts", token="admin",
                                json=dict(ANN, email="new.person@example.org", **{key: bad}))
            assert_problem(st, body, 400)
            st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin", json={key: bad})
            assert_problem(st, body, 400)
        for key in ("source", "notice_version", "collection_method"):
            st, body = srv.call("PUT", f"/v1/contacts/{cid}/consents/marketing", token="admin",
                                json={"channel": "email", "status": "withdrawn", key: bad})
            assert_problem(st, body, 400)
        st, body = srv.call("POST", "/v1/suppressions", token="admin",
                            json={"email": "someone@example.org", "reason": "manual", "source": bad})
        assert_problem(st, body, 400)
    after = counts(srv)
    assert {k: v for k, v in after.items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    assert status_of(srv, cid, "marketing", "email") == "granted"


# ---- the campaign-list digest ----

def test_the_campaign_list_digest_is_keyed_not_a_plain_sha256(srv):
    body = json.dumps(["ann.patient@example.org", "bob@example.org"])
    st, _, data = srv.raw("POST", "/v1/outreach/filter?purpose=marketing&channel=email", body=body.encode(),
                          headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                                   "Content-Type": "application/json"})
    assert st == 200, data[:300]
    plain = hashlib.sha256(body.encode()).hexdigest()
    e = last_entry(srv, "outreach.filter")
    detail = json.loads(e["detail"])
    assert re.fullmatch(r"[0-9a-f]{64}", detail["list_hmac"]), detail
    assert "list_sha256" not in detail
    assert plain not in json.dumps(e, default=str) and plain not in data.decode(), detail
    # Keyed, but stable: the same list gives the same digest, another list another.
    for again, same in ((body, True), (json.dumps(["carol@example.org"]), False)):
        st, _, _ = srv.raw("POST", "/v1/outreach/filter?purpose=marketing&channel=email", body=again.encode(),
                           headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                                    "Content-Type": "application/json"})
        assert st == 200
        assert (json.loads(last_entry(srv, "outreach.filter")["detail"])["list_hmac"] == detail["list_hmac"]) is same


if __name__ == "__main__":
    run(globals())
