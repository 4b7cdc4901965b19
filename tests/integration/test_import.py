"""Contact import over HTTPS: NDJSON in, one result a line out."""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, run  # noqa: E402


def imp(srv, lines, token="admin", ctype="application/x-ndjson"):
    body = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
    st, out = srv.call("POST", "/v1/contacts/import", token=token, body=body, content_type=ctype)
    return st, out


def test_admin_imports_contacts_with_historical_consents(srv):
    lines = [
        {"email": "gina@example.org", "name": "Gina", "income": 5, "collected_for": ["marketing", "service"],
         "source": "crm-2019",
         "consents": [{"purpose": "marketing", "channel": "email", "status": "granted",
                       "at": "2019-05-01T09:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                       "source": "crm", "collection_method": "web_form",
                       "evidence": {"form": "https://example.org/signup"}},
                      {"purpose": "marketing", "channel": "sms", "status": "granted",
                       "at": "2019-05-01T09:00:00Z"},
                      {"purpose": "marketing", "channel": "sms", "status": "withdrawn",
                       "at": "2020-02-01T09:00:00Z"}]},
        {"email": "hal@example.org", "collected_for": ["marketing"],
         "consents": [{"purpose": "marketing", "channel": "email", "status": "granted",
                       "at": "2020-01-01T00:00:00Z", "expires_at": "2021-01-01T00:00:00Z"}]},
        {"email": "GINA@example.org", "collected_for": ["marketing"]},
        "{not json",
        {"email": "ivy@example.org", "collected_for": ["nope"]},
        {"email": "jo@example.org", "collected_for": ["marketing"], "shoe_size": 9},
        {"phone": "+442079460555", "collected_for": ["service"]},
    ]
    st, out = imp(srv, lines)
    assert st == 200, out
    res = [json.loads(l) for l in out.splitlines()]
    assert [r.get("status") for r in res[:-1]] == ["created", "created", "duplicate", "invalid", "invalid",
                                                   "invalid", "created"], res
    assert [r["line"] for r in res[:-1]] == list(range(1, 8))
    assert res[-1]["summary"]["created"] == 3 and res[-1]["summary"]["invalid"] == 3, res[-1]
    gina, hal = res[0]["id"], res[1]["id"]
    st, body = srv.call("GET", f"/v1/contacts/{gina}?purpose=service", token="admin")
    assert st == 200 and body["fields"]["name"] == "Gina" and body["fields"]["income"] == 5, body
    st, body = srv.call("GET", f"/v1/contacts/{gina}/consents", token="admin")
    cur = {(c["purpose"], c["channel"]): c for c in body["consents"]}
    assert cur[("marketing", "email")]["at"].startswith("2019-05-01T09:00:00"), cur
    assert cur[("marketing", "email")]["evidence"] == {"form": "https://example.org/signup"}
    assert cur[("marketing", "sms")]["status"] == "withdrawn"
    assert cur[("marketing", "sms")]["granted_at"].startswith("2019-05-01"), cur
    assert len(body["history"]) == 3
    assert srv.check("marketing", "email", contact_id=gina)["reason"] == "granted"
    assert srv.check("marketing", "sms", contact_id=gina)["reason"] == "withdrawn"
    assert srv.check("marketing", "email", email="hal@example.org")["reason"] == "expired"
    rows = srv.audit_rows("action = 'contacts.import'")
    assert len(rows) == 2, rows  # one batch and the request's summary
    assert json.loads(rows[0]["detail"])["created"] == 3
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    dump = "\n".join(con.iterdump())
    con.close()
    assert "gina" not in dump.lower() and "signup" not in dump


def test_import_needs_the_admin_role_and_ndjson(srv):
    st, out = imp(srv, [{"email": "k@example.org", "collected_for": ["marketing"]}], token="marketing")
    assert_problem(st, out, 403)
    st, out = imp(srv, ["email", "k@example.org"], ctype="text/csv")
    assert_problem(st, out, 415)


def test_import_of_many_lines_batches_and_every_contact_is_durable(srv):
    n = 2500
    lines = [{"email": f"bulk{i}@example.org", "collected_for": ["marketing"],
              "consents": [{"purpose": "marketing", "channel": "email", "status": "granted"}]} for i in range(n)]
    st, out = imp(srv, lines)
    assert st == 200
    res = [json.loads(l) for l in out.splitlines()]
    assert res[-1]["summary"]["created"] == n, res[-1]
    srv.kill9()
    srv.start()
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    count = con.execute("SELECT count(*) FROM contact").fetchone()[0]
    con.close()
    assert count == n
    batches = srv.audit_rows("action = 'contacts.import' AND detail LIKE '{\"batch\":%'")
    assert sum(json.loads(r["detail"])["created"] for r in batches) == n, batches
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                       body="\n".join(f"bulk{i}@example.org" for i in range(n)), content_type="text/csv")
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["allowed"] == n, summary


def test_duplicates_inside_a_batch_across_batches_and_against_stored_contacts_are_each_reported(srv):
    """The writer inserts a batch (4,000 lines) in a few statements; every
    duplicate line is still its own result, whichever came first: a contact
    stored before, an earlier line of the same batch, or a line of an
    earlier batch. Consents of a duplicate line are not stored."""
    stored = srv.create_contact(email="stored@example.org", collected_for=["marketing"])
    n = 4500
    emails = [f"dup{i}@example.org" for i in range(n)]
    emails[10] = "STORED@example.org"  # a stored contact's
    emails[20] = "dup5@example.org"  # the same batch's line 6
    emails[4200] = "dup100@example.org"  # the first batch's line 101
    lines = [{"email": e, "collected_for": ["marketing"],
              "consents": [{"purpose": "marketing", "channel": "email", "status": "granted"},
                           {"purpose": "marketing", "channel": "email", "status": "withdrawn",
                            "at": "2020-01-01T00:00:00Z"}] if i in (5, 20) else []}
             for i, e in enumerate(emails)]
    st, out = imp(srv, lines)
    assert st == 200, out
    res = [json.loads(l) for l in out.splitlines()]
    dups = [r["line"] for r in res[:-1] if r["status"] == "duplicate"]
    assert dups == [11, 21, 4201], dups
    assert res[-1]["summary"]["created"] == n - 3 and res[-1]["summary"]["duplicates"] == 3, res[-1]
    assert srv.check("marketing", "email", email="stored@example.org")["reason"] != "granted"
    st, body = srv.call("GET", f"/v1/contacts/{stored}/consents", token="admin")
    assert st == 200 and body["consents"] == [] and body["history"] == [], body
    # Line 6 is the one stored: its grant (now), then its withdrawal
    # (back-dated, so history only: the grant stays the state).
    six = res[5]["id"]
    st, body = srv.call("GET", f"/v1/contacts/{six}/consents", token="admin")
    assert [c["status"] for c in body["consents"]] == ["granted"], body
    assert len(body["history"]) == 2, body
    assert srv.check("marketing", "email", email="dup100@example.org")["reason"] != "granted"


if __name__ == "__main__":
    run(globals())
