"""Suppression list over HTTPS: add, look up, lift, import historical lists,
and suppression that survives erasure."""
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, run  # noqa: E402


def test_marketing_adds_and_looks_up_without_the_address_echoed(srv):
    st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                        json={"email": "Bob@Example.org", "scope": "purpose", "scope_value": "marketing",
                              "reason": "unsubscribe", "source": "footer-link"})
    assert st == 201 and body["added"] is True, body
    assert "email" not in body and "Bob" not in json.dumps(body)
    st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                        json={"email": "bob@example.org", "scope": "purpose", "scope_value": "marketing",
                              "reason": "unsubscribe"})
    assert st == 200 and body["added"] is False, body  # already there
    st, body = srv.call("GET", "/v1/suppressions?email=BOB%40example.org", token="marketing")
    assert st == 200 and body["suppressed"] is True, body
    assert [s["scope_value"] for s in body["suppressions"]] == ["marketing"], body
    assert "bob" not in json.dumps(body).lower()
    st, body = srv.call("GET", "/v1/suppressions?email=other%40example.org", token="marketing")
    assert st == 200 and body == {"suppressed": False, "suppressions": []}, body
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    blob = b"".join(bytes(str(r), "utf8") for r in con.execute("SELECT * FROM suppression"))
    con.close()
    assert b"bob" not in blob.lower()
    for r in srv.audit_rows():
        assert "bob" not in repr(r).lower(), r


def test_bad_suppressions_are_refused(srv):
    for payload in ({"email": "not-an-address"}, {"email": "a@b.org", "phone": "+4420794600000"},
                    {"email": "a@b.org", "scope": "purpose", "scope_value": "nope"},
                    {"email": "a@b.org", "reason": "because"}, {"email": "a@b.org", "extra": "x"},
                    {"email": "a@b.org", "created_at": "2999-01-01T00:00:00Z"}):
        st, body = srv.call("POST", "/v1/suppressions", token="marketing", json=payload)
        assert_problem(st, body, 400)
    st, body = srv.call("POST", "/v1/suppressions", token="support", json={"email": "a@b.org"})
    assert_problem(st, body, 403)
    # An erasure suppression can never be lifted: only erasure itself, or a role
    # that may erase (importing a former system's erasures), may create one.
    st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                        json={"email": "victim@example.org", "reason": "erasure"})
    assert_problem(st, body, 403)
    assert srv.check("service", "email", email="victim@example.org", token="admin")["reason"] == "unknown_contact"
    st, body = srv.call("POST", "/v1/suppressions", token="admin",
                        json={"email": "former@example.org", "reason": "erasure", "source": "legacy-crm"})
    assert st in (200, 201), (st, body)


def test_only_admin_lifts_and_lifting_keeps_the_row(srv):
    cid = srv.create_contact(email="carol@example.org", collected_for=["marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                        json={"email": "carol@example.org", "reason": "bounce"})
    assert st == 201, body
    assert srv.check("marketing", "email", email="carol@example.org")["reason"] == "suppressed"
    st, body = srv.call("DELETE", "/v1/suppressions?email=carol%40example.org", token="marketing")
    assert_problem(st, body, 403)
    st, body = srv.call("DELETE", "/v1/suppressions?email=carol%40example.org", token="admin")
    assert st == 200 and body["lifted"] == 1, body
    assert srv.check("marketing", "email", email="carol@example.org")["allowed"] is True
    st, body = srv.call("DELETE", "/v1/suppressions?email=carol%40example.org", token="admin")
    assert_problem(st, body, 404)
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    rows = con.execute("SELECT lifted_us, lifted_by FROM suppression").fetchall()
    con.close()
    assert len(rows) == 1 and rows[0][0] is not None and rows[0][1] == "admin-1", rows
    assert any(r["action"] == "suppressions.delete" and r["decision"] == "allow" for r in srv.audit_rows())


def test_erased_person_stays_suppressed_even_when_reimported(srv):
    cid = srv.create_contact(email="dave@example.org", phone="+442079460999", collected_for=["marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert st == 200, body
    got = srv.check("marketing", "email", email="dave@example.org")
    assert got == {**got, "allowed": False, "reason": "suppressed_by_list"}, got
    # The erasure suppression cannot be lifted.
    st, body = srv.call("DELETE", "/v1/suppressions?email=dave%40example.org", token="admin")
    assert_problem(st, body, 404)
    # Imported again as a new contact, with a fresh consent: still suppressed.
    line = {"email": "Dave@example.org", "collected_for": ["marketing"],
            "consents": [{"purpose": "marketing", "channel": "email", "status": "granted"}]}
    st, out = srv.call("POST", "/v1/contacts/import", token="admin", body=json.dumps(line) + "\n",
                       content_type="application/x-ndjson")
    assert st == 200, out
    new_id = json.loads(out.splitlines()[0])["id"]
    got = srv.check("marketing", "email", email="dave@example.org")
    assert got["allowed"] is False and got["reason"] == "suppressed", got
    got = srv.check("marketing", "email", contact_id=new_id)
    assert got["allowed"] is False and got["reason"] == "suppressed", got
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                       body=json.dumps(["dave@example.org", new_id]), content_type="application/json")
    lines = [json.loads(l) for l in out.splitlines()]
    assert [l["reason"] for l in lines[:2]] == ["suppressed", "suppressed"], lines


def test_historical_list_import_keeps_original_timestamps(srv):
    csv = ("email,phone,scope,scope_value,reason,source,created_at\r\n"
           "old1@example.org,,all,,unsubscribe,legacy-esp,2015-03-01T10:00:00Z\r\n"
           ",+442079460123,channel,sms,complaint,legacy-sms,2016-04-02T11:00:00Z\r\n"
           "not-an-address,,all,,unsubscribe,legacy-esp,2015-03-01T10:00:00Z\r\n"
           "old1@example.org,,all,,unsubscribe,legacy-esp,2015-03-01T10:00:00Z\r\n")
    st, body = srv.call("POST", "/v1/suppressions", token="marketing", body=csv, content_type="text/csv")
    assert st == 200, body
    assert (body["total"], body["added"], body["already"], body["invalid"]) == (4, 2, 1, 1), body
    assert body["errors"][0]["line"] == 4, body
    st, body = srv.call("GET", "/v1/suppressions?email=old1%40example.org", token="marketing")
    assert body["suppressions"][0]["created_at"].startswith("2015-03-01T10:00:00"), body
    st, body = srv.call("GET", "/v1/suppressions?phone=%2B442079460123", token="marketing")
    assert body["suppressions"][0]["scope"] == "channel", body
    nd = "\n".join(json.dumps({"email": f"nd{i}@example.org", "reason": "bounce",
                               "created_at": "2019-12-31T23:00:00Z"}) for i in range(2500)) + "\n{oops\n"
    st, body = srv.call("POST", "/v1/suppressions", token="admin", body=nd,
                        content_type="application/x-ndjson")
    assert st == 200 and body["added"] == 2500 and body["invalid"] == 1, body
    got = srv.check("marketing", "email", email="nd1234@example.org")
    assert got["reason"] == "suppressed_by_list", got
    batches = [r for r in srv.audit_rows("action = 'suppressions.import'")]
    assert len(batches) >= 3, batches  # 1000 a batch, each audited


def test_an_import_counts_an_entry_already_there_inside_a_batch_and_across_batches(srv):
    """The writer adds a batch (1,000 entries) in one statement; an entry
    that is already in force (stored before, earlier in the same batch, or
    in an earlier batch) is counted as already there, never added twice."""
    srv.call("POST", "/v1/suppressions", token="marketing",
             json={"email": "before@example.org", "reason": "unsubscribe"})
    n = 1500
    emails = [f"sx{i}@example.org" for i in range(n)]
    emails[3] = "before@example.org"
    emails[7] = "sx6@example.org"
    emails[1200] = "sx100@example.org"
    csv = "".join(f"{e}\r\n" for e in emails)
    st, body = srv.call("POST", "/v1/suppressions", token="marketing", body=csv, content_type="text/csv")
    assert st == 200, body
    for e in ("before@example.org", "sx6@example.org", "sx100@example.org"):
        st, got = srv.call("GET", f"/v1/suppressions?email={e.replace('@', '%40')}", token="marketing")
        assert st == 200 and len(got["suppressions"]) == 1, (e, got)
    assert (body["total"], body["added"], body["already"]) == (n, n - 3, 3), body


def test_consent_check_reports_suppression_for_known_and_unknown_addresses(srv):
    cid = srv.create_contact(email="erin@example.org", collected_for=["marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    srv.call("POST", "/v1/suppressions", token="marketing",
             json={"email": "erin@example.org", "scope": "channel", "scope_value": "email"})
    srv.call("POST", "/v1/suppressions", token="marketing", json={"email": "frank@example.org"})
    assert srv.check("marketing", "email", email="erin@example.org")["reason"] == "suppressed"
    assert srv.check("marketing", "email", contact_id=cid)["reason"] == "suppressed"
    assert srv.check("marketing", "sms", contact_id=cid)["reason"] != "suppressed"
    assert srv.check("marketing", "email", email="frank@example.org")["reason"] == "suppressed_by_list"


def test_a_large_import_does_not_hold_up_other_requests_while_it_commits():
    """One HTTP worker and slow group commits (a test hook): while a list is
    being written, the server still answers other requests at once, since
    the import waits for its commits on the commit thread, not on a worker."""
    delay_ms = 600
    srv = Server(env={"CONSENTD_TEST_FAULTS": "1", "CONSENTD_TEST_COMMIT_DELAY_MS": str(delay_ms)},
                 start=False)
    try:
        conf = os.path.join(srv.data, "consentd.conf")
        with open(conf) as f:
            c = json.load(f)
        c["threads"] = 1
        with open(conf, "w") as f:
            json.dump(c, f)
        srv.start()
        csv = "".join(f"big{i}@example.org\r\n" for i in range(4000))  # four batches
        result = {}

        def importer():
            result["reply"] = srv.call("POST", "/v1/suppressions", token="marketing", body=csv,
                                       content_type="text/csv", client=srv.new_client())

        other = srv.new_client()
        srv.call("GET", "/healthz", client=other)  # the TLS handshake, out of the timing
        t = threading.Thread(target=importer)
        t.start()
        slowest, answered, deadline = 0.0, 0, time.monotonic() + 60
        while t.is_alive() and time.monotonic() < deadline:
            t0 = time.monotonic()
            st, _ = srv.call("GET", "/healthz", client=other)
            took = time.monotonic() - t0
            assert st == 200, st
            if t.is_alive():
                answered += 1
                slowest = max(slowest, took)
            time.sleep(0.05)
        t.join(60)
        st, body = result["reply"]
        assert st == 200 and body["added"] == 4000, body
        assert answered >= 3, f"only {answered} requests answered during the import"
        assert slowest < delay_ms / 2000, f"a request waited {slowest:.3f} s behind the import's commits"
        batches = srv.audit_rows("action = 'suppressions.import'")
        assert len(batches) == 4, batches
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
