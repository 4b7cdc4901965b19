"""Data-subject requests (issue 16): staff record a person's access, erasure
or objection request, the deadline is computed by jurisdiction, and the
request moves through its states with a reason; the person is mailed at
receipt and completion; /metrics counts what is overdue. One scenario each,
as a privacy officer would meet it."""
import datetime
import email
import re
import urllib.parse
import email.policy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, contains_value, psql_rows, run  # noqa: E402

ALICE = {"email": "alice.request@example.org", "name": "Alice Requester",
         "collected_for": ["service", "marketing"], "source": "shop-signup"}
REASON = "Alice Requester phoned on 3 March and confirmed her identity"


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def new_request(srv, cid, kind="access", jurisdiction="gdpr", received=None, token="support"):
    body = {"contact_id": cid, "kind": kind, "jurisdiction": jurisdiction}
    if received is not None:
        body["received_at"] = received
    return srv.call("POST", "/v1/requests", token=token, json=body)


def move(srv, rid, to, reason=REASON, token="support"):
    return srv.call("POST", f"/v1/requests/{rid}/transitions", token=token,
                    json={"to": to, "reason": reason})


def request_mails(srv, rid, timeout=10.0):
    """The .eml files the mail worker wrote for request rid."""
    folder = os.path.join(srv.data, "mail-outbox")
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".eml"):
            with open(os.path.join(folder, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            if msg["X-Consentd-Link-Id"] == rid:
                found.append(msg)
    return found


def wait_mails(srv, rid, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = request_mails(srv, rid)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_support_records_a_gdpr_access_request_due_one_month_later(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid, received="2026-01-31")
    assert st == 201, (st, out)
    # 31 January + one month = 28 February 2026, a Saturday: Monday 2 March.
    assert out["state"] == "received" and out["due_at"] == "2026-03-02", out
    assert out["kind"] == "access" and out["jurisdiction"] == "gdpr" and out["origin"] == "staff", out
    assert out["acknowledge_by"] is None, out
    st, got = srv.call("GET", f"/v1/requests/{out['id']}", token="support")
    assert st == 200 and got["id"] == out["id"] and got["steps"] == [], (st, got)


def test_a_ccpa_request_is_due_in_45_days_with_an_acknowledgement_in_10_business_days(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid, kind="erasure", jurisdiction="ccpa", received="2026-03-02T15:04:05Z")
    assert st == 201, (st, out)
    assert out["due_at"] == "2026-04-16", out
    assert out["acknowledge_by"] == "2026-03-16", out


def test_staff_move_a_request_to_completed_and_the_person_is_mailed_twice(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid)
    assert st == 201, (st, out)
    rid = out["id"]
    mails = wait_mails(srv, rid, 1)
    assert len(mails) == 1, mails
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert "request for access" in text and out["due_at"] in text, text
    assert mails[0]["To"] == ALICE["email"], mails[0]["To"]
    for to in ("verified", "in_progress", "completed"):
        st, got = move(srv, rid, to)
        assert st == 200 and got["state"] == to, (to, st, got)
    mails = wait_mails(srv, rid, 2)
    assert len(mails) == 2, mails
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == ["We received your request", "Your request is complete"], subjects
    st, got = srv.call("GET", f"/v1/requests/{rid}", token="support")
    assert st == 200, (st, got)
    assert [(s["from"], s["to"]) for s in got["steps"]] == [
        ("received", "verified"), ("verified", "in_progress"), ("in_progress", "completed")], got
    assert all(s["reason"] == REASON and s["by"] == "support-1" for s in got["steps"]), got


def test_an_invalid_transition_is_a_409_problem_and_changes_nothing(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid)
    rid = out["id"]
    st, body = move(srv, rid, "completed")  # received cannot jump to completed
    assert_problem(st, body, 409)
    assert body.get("reason") == "invalid_transition", body
    st, got = srv.call("GET", f"/v1/requests/{rid}", token="support")
    assert got["state"] == "received" and got["steps"] == [], got
    # Final states stay final.
    assert move(srv, rid, "denied")[0] == 200
    st, body = move(srv, rid, "in_progress")
    assert_problem(st, body, 409)


def test_gdpr_extension_only_while_the_first_month_runs(srv):
    cid = srv.create_contact(**ALICE)
    recent = today().isoformat()
    st, out = new_request(srv, cid, received=recent)
    st, got = move(srv, out["id"], "extended", reason="complex request, the person was told")
    assert st == 200 and got["state"] == "extended" and got["extended"] is True, (st, got)
    assert got["due_at"] > out["due_at"], (out, got)
    # An extended request cannot be extended again.
    st, body = move(srv, out["id"], "extended")
    assert_problem(st, body, 409)
    # Received two months ago: the first month is over, too late to extend.
    old = (today() - datetime.timedelta(days=62)).isoformat()
    st, late = new_request(srv, cid, received=old)
    assert st == 201, (st, late)
    st, body = move(srv, late["id"], "extended")
    assert_problem(st, body, 409)
    assert body.get("reason") == "extension_too_late", body


def test_completing_an_erasure_request_erases_the_person(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid, kind="erasure", token="admin")
    rid = out["id"]
    for to in ("verified", "in_progress"):
        assert move(srv, rid, to, token="admin")[0] == 200
    # Support may manage requests but not erase: completing an erasure is refused.
    st, body = move(srv, rid, "completed", token="support")
    assert_problem(st, body, 403)
    st, got = move(srv, rid, "completed", token="admin")
    assert st == 200 and got["state"] == "completed", (st, got)
    st, c = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert st in (404, 410) or c.get("status") == "erased", (st, c)
    # The reasons were sealed under the erased person's key: gone with it.
    st, got = srv.call("GET", f"/v1/requests/{rid}", token="admin")
    assert st == 200 and all(s["reason"] is None for s in got["steps"]), got


def test_requests_are_listed_by_state_and_due_date(srv):
    cid = srv.create_contact(**ALICE)
    ids = []
    for day in ("2026-01-05", "2026-02-10", "2026-03-20"):
        st, out = new_request(srv, cid, received=day)
        ids.append(out["id"])
    move(srv, ids[2], "verified")
    st, got = srv.call("GET", "/v1/requests?state=received&due_before=2026-04-01", token="support")
    assert st == 200, (st, got)
    assert [r["id"] for r in got["requests"]] == ids[:2] and got["more"] is False, got
    st, got = srv.call("GET", "/v1/requests?limit=1", token="auditor")
    assert st == 200 and len(got["requests"]) == 1 and got["more"] is True, got
    st, body = srv.call("GET", "/v1/requests?state=lost", token="support")
    assert_problem(st, body, 400)
    st, body = srv.call("GET", "/v1/requests?colour=red", token="support")
    assert_problem(st, body, 400)


def test_roles_without_requests_rights_are_refused(srv):
    cid = srv.create_contact(**ALICE)
    st, body = new_request(srv, cid, token="marketing")
    assert_problem(st, body, 403)
    st, body = new_request(srv, cid, token="auditor")  # may read, not record
    assert_problem(st, body, 403)
    st, body = srv.call("GET", "/v1/requests", token="marketing")
    assert_problem(st, body, 403)


def test_bad_request_bodies_get_a_problem_and_record_nothing(srv):
    cid = srv.create_contact(**ALICE)
    for body in ({"contact_id": cid, "kind": "delete", "jurisdiction": "gdpr"},
                 {"contact_id": cid, "kind": "access", "jurisdiction": "lgpd"},
                 {"contact_id": cid, "kind": "access", "jurisdiction": "gdpr", "received_at": "2026-02-30"},
                 {"contact_id": cid, "kind": "access", "jurisdiction": "gdpr", "colour": "red"},
                 {"contact_id": 7, "kind": "access", "jurisdiction": "gdpr"}):
        st, out = srv.call("POST", "/v1/requests", token="support", json=body)
        assert_problem(st, out, 400)
    future = (today() + datetime.timedelta(days=3)).isoformat()
    st, out = new_request(srv, cid, received=future)
    assert_problem(st, out, 422)
    st, out = new_request(srv, "AAAAAAAAAAAAAAAAAAAAAA")
    assert_problem(st, out, 404)
    st, out = new_request(srv, cid)
    rid = out["id"]
    st, body = move(srv, rid, "verified", reason="")
    assert_problem(st, body, 400)
    st, body = move(srv, rid, "verified", reason="x" * 501)
    assert_problem(st, body, 413)
    st, got = srv.call("GET", "/v1/requests", token="support")
    assert [r["id"] for r in got["requests"]] == [rid], got
    st, body = srv.call("GET", "/v1/requests/AAAAAAAAAAAAAAAAAAAAAA", token="support")
    assert_problem(st, body, 404)


def test_each_transition_is_audited_without_the_reason(srv):
    cid = srv.create_contact(**ALICE)
    st, out = new_request(srv, cid)
    move(srv, out["id"], "verified")
    rows = srv.audit_rows("action IN ('requests.create', 'requests.transition')")
    assert [r["action"] for r in rows] == ["requests.create", "requests.transition"], rows
    assert all(r["record_id"] == cid for r in rows), rows
    blob = json.dumps(rows, default=str)
    assert out["id"] in blob, blob
    for value in ("Alice Requester", "phoned on 3 March", ALICE["email"]):
        assert not contains_value(blob, value), value
    # Nor does the database hold the reason in the clear.
    if srv.pg:
        dump = json.dumps(psql_rows(srv.pg, "SELECT * FROM dsr_step"), default=str)
        assert "phoned on 3 March" not in dump and len(dump) > 10, dump
    else:
        with open(srv.db, "rb") as f:
            assert b"phoned on 3 March" not in f.read()


def test_metrics_count_overdue_and_due_soon_requests(srv):
    cid = srv.create_contact(**ALICE)
    old = (today() - datetime.timedelta(days=70)).isoformat()
    new_request(srv, cid, received=old)  # due a month after: overdue
    soon = (today() - datetime.timedelta(days=28)).isoformat()
    new_request(srv, cid, received=soon, jurisdiction="gdpr")  # due within days
    st, done = new_request(srv, cid, received=old)
    move(srv, done["id"], "denied")  # closed: counts for neither
    st, text = srv.call("GET", "/metrics")
    assert st == 200, st
    assert "consentd_subject_requests_overdue 1\n" in text, text
    assert "consentd_subject_requests_due_soon 1\n" in text, text


# ---- from the preference page ----

def page_form(srv, tok, fields, lang=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if lang:
        h["Accept-Language"] = lang
    st, _, data = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(fields).encode(), headers=h)
    return st, data.decode()


def csrf(html):
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def page_erasure(srv, tok, lang=None):
    h = {"Accept-Language": lang} if lang else {}
    st, _, html = srv.raw("GET", f"/p/{tok}", headers=h)
    assert st == 200, st
    st, ask = page_form(srv, tok, {"csrf": csrf(html.decode()), "action": "erase_request"}, lang)
    assert st == 200, ask
    return page_form(srv, tok, {"csrf": csrf(ask), "action": "erase_confirm", "confirm": "yes"}, lang)


def approval_server():
    srv = Server(start=False)
    path = os.path.join(srv.data, "policy.json")
    with open(path) as f:
        doc = json.load(f)
    doc["erasure_needs_approval"] = True
    with open(path, "w") as f:
        json.dump(doc, f)
    srv.start()
    return srv


def test_an_erasure_asked_on_the_page_waits_for_staff_approval_when_the_policy_says_so():
    srv = approval_server()
    try:
        cid = srv.create_contact(**ALICE)
        _, tok = srv.manage_link(cid)
        st, html = page_erasure(srv, tok)
        assert st == 200 and "received your request to erase" in html, html
        m = re.search(r'<time datetime="(\d{4}-\d\d-\d\d)">', html)
        assert m, html
        # Nothing is erased yet; the request is waiting for staff.
        st, c = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
        assert st == 200, (st, c)
        st, got = srv.call("GET", "/v1/requests", token="admin")
        (rq,) = got["requests"]
        assert rq["kind"] == "erasure" and rq["origin"] == "page" and rq["state"] == "verified", rq
        assert rq["awaiting_approval"] is True and rq["due_at"] == m.group(1), rq
        assert len(wait_mails(srv, rq["id"], 1)) == 1
        # Staff approve by moving it on; completing it erases.
        assert move(srv, rq["id"], "in_progress", token="admin")[0] == 200
        st, done = move(srv, rq["id"], "completed", token="admin")
        assert st == 200 and done["awaiting_approval"] is False, (st, done)
        st, c = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
        assert_problem(st, c, 410)
    finally:
        srv.close()


def test_an_erasure_on_the_page_without_approval_is_recorded_as_a_completed_request(srv):
    cid = srv.create_contact(**ALICE)
    _, tok = srv.manage_link(cid)
    st, html = page_erasure(srv, tok, lang="zh-CN")
    assert st == 200 and "您的数据已删除" in html, html
    st, got = srv.call("GET", "/v1/requests?state=completed", token="admin")
    (rq,) = got["requests"]
    assert rq["contact_id"] == cid and rq["kind"] == "erasure" and rq["origin"] == "page", rq
    assert request_mails(srv, rq["id"]) == []  # the page was the answer; no address is left


def test_a_download_from_the_page_is_recorded_as_an_access_request(srv):
    cid = srv.create_contact(**ALICE)
    _, tok = srv.manage_link(cid)
    st, _, html = srv.raw("GET", f"/p/{tok}")
    st, data = page_form(srv, tok, {"csrf": csrf(html.decode()), "action": "download"})
    assert st == 200 and json.loads(data)["contact"]["id"] == cid, data[:300]
    st, got = srv.call("GET", "/v1/requests", token="support")
    (rq,) = got["requests"]
    assert (rq["kind"], rq["state"], rq["origin"]) == ("access", "completed", "page"), rq


if __name__ == "__main__":
    run(globals())
