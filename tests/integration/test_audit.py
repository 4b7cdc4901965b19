"""The audit trail for auditors: tamper evidence (CLI and HTTP), fail-closed
auditing, exact entries per route, no personal data, append-only storage,
and the auditor API (filters, pagination, export, checkpoints)."""
import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import contains_value, Server, assert_problem, cli, run  # noqa: E402

ALICE = {"email": "Alice.Quarrington@Example.org", "name": "Alice Quarrington",
         "phone": "+44 20 7946 0321", "income": 98765, "health": "chronic zyzzyvitis",
         "collected_for": ["service", "marketing"], "source": "signup-form"}
BOB = {"email": "bob.vandermeer@example.net", "name": "Bob Vandermeer",
       "collected_for": ["service", "marketing"]}

STRINGS = ["actor", "role", "action", "record_id", "purpose", "channel", "decision", "reason",
           "fields", "request_id", "client", "detail"]
TRIGGERS = ("audit_no_update", "audit_no_delete", "audit_next_seq")


# ---- helpers -------------------------------------------------------------

def row_hash(row, prev):
    """The entry hash of a stored row, per docs/audit.md."""
    out = struct.pack(">qq", row["seq"], row["time_us"])
    for name in STRINGS:
        b = row[name].encode("utf-8")
        out += struct.pack(">I", len(b)) + b
    return hashlib.sha256(b"consentd-audit-v1\0" + prev + out).digest()


def rows(db, where="1=1", params=()):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    out = [dict(r) for r in con.execute(f"SELECT * FROM audit WHERE {where} ORDER BY seq", params)]
    con.close()
    return out


def checkpoint_sizes(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = [r[0] for r in con.execute("SELECT size FROM audit_checkpoint ORDER BY size")]
    con.close()
    return out


def activity(srv):
    """Some ordinary traffic: writes, reads, checks and a denial."""
    a = srv.create_contact(**ALICE)
    b = srv.create_contact(**BOB)
    srv.set_consent(a, "marketing", "email", "granted")
    for cid in (a, b):
        st, _ = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="support")
        assert st == 200
    srv.check("marketing", "email", contact_id=a)
    srv.check("marketing", "email", contact_id=b)
    st, _ = srv.call("DELETE", f"/v1/contacts/{b}", token="marketing")
    assert st == 403
    return a, b


def tamper(srv, fn):
    """Stops the server and edits the database as an attacker with file
    access would: drop the append-only triggers, change rows."""
    srv.stop()
    con = sqlite3.connect(srv.db)
    con.row_factory = sqlite3.Row
    for t in TRIGGERS:
        con.execute(f"DROP TRIGGER IF EXISTS {t}")
    fn(con)
    con.commit()
    con.close()


def verify_both(srv):
    """Runs the CLI on the stopped server's data, then starts it and asks the
    endpoint. Returns (exit code, CLI output, endpoint status, endpoint body).
    A server that finds, at open, that the stored chain no longer reaches its
    signed anchor stops appending: every audited route is 503 audit-altered.
    One that finds it later (its start-up verification) raises the alarm and
    the endpoint reports the verdict."""
    code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
    srv.start(wait_ready=False)
    st, body = srv.call("GET", "/v1/audit/verify", token="auditor")
    assert st in (200, 503), (st, body)
    return code, out + err, st, body


def wait_alarm(srv):
    """/readyz turns 503 with audit_intact false once the alarm is raised."""
    deadline = time.time() + 20
    while time.time() < deadline:
        st, body = srv.call("GET", "/readyz")
        if st == 503 and body.get("audit_intact") is False:
            return body
        time.sleep(0.05)
    raise AssertionError(f"no audit alarm on /readyz: {st} {body}")


def assert_detected(srv, seq, fault, also=None, at_open=None):
    code, out, st, body = verify_both(srv)
    assert code == 5, (code, out)
    assert f"FAILED at seq {seq} ({fault})" in out, out
    if also:
        assert also in out, (also, out)
    ready = wait_alarm(srv)
    assert ready["audit_fault"], ready
    if at_open is not None:
        assert (st == 503) == at_open, (st, body)
    if st == 503:
        # Fail closed: the trail on disk is not the one this server signed.
        assert body["type"].endswith("/audit-altered"), body
        st, _ = srv.call("GET", "/v1/audit", token="auditor")
        assert st == 503
        m = srv.raw("GET", "/metrics")[2].decode()
        assert "consentd_audit_intact 0" in m, m
        return None
    assert body["ok"] is False, body
    assert body["first_bad_seq"] == seq, body
    assert body["fault"] == fault, body
    assert body["schedule"]["intact"] is False, body
    if also:
        assert also in body["reason"], (also, body)
    return body


def replace_row(con, seq, row):
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    con.execute(f"INSERT INTO audit ({cols}) VALUES ({marks})", list(row.values()))


def get_audit(srv, query="", token="auditor"):
    return srv.call("GET", "/v1/audit" + (("?" + query) if query else ""), token=token)


def export(srv, fmt="ndjson", query=""):
    q = f"format={fmt}" + (("&" + query) if query else "")
    st, hdrs, data = srv.raw("GET", f"/v1/audit/export?{q}",
                             headers={"Authorization": f"Bearer {srv.tokens['auditor']}"})
    assert st == 200, (st, data[:300])
    return hdrs, data


# ---- tamper evidence -------------------------------------------------------

def test_cli_and_endpoint_agree_an_untouched_trail_is_intact(srv):
    activity(srv)
    st, body = srv.call("GET", "/v1/audit/verify", token="auditor")
    assert st == 200 and body["ok"] is True, body
    assert body["fault"] == "none" and body["first_bad_seq"] is None, body
    # Every entry up to the request's own (appended after the verdict).
    assert body["entries"] == len(rows(srv.db)) - 1, body
    srv.stop()
    code, out, _ = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0, out


def test_an_edited_field_is_detected_at_its_entry(srv):
    a, _ = activity(srv)
    target = rows(srv.db, "action = 'contacts.read'")[0]["seq"]

    def edit(con):
        con.execute("UPDATE audit SET actor = 'somebody-else' WHERE seq = ?", (target,))
    tamper(srv, edit)
    assert_detected(srv, target, "edited", also=f"entry {target} was edited")


def test_a_deleted_entry_is_detected_at_its_number(srv):
    activity(srv)
    target = rows(srv.db, "action = 'consent.check'")[0]["seq"]
    tamper(srv, lambda con: con.execute("DELETE FROM audit WHERE seq = ?", (target,)))
    assert_detected(srv, target, "deleted", also=f"entry {target} is missing")


def test_a_forged_entry_inserted_with_a_valid_hash_is_detected(srv):
    activity(srv)
    all_rows = rows(srv.db)
    n = all_rows[len(all_rows) // 2]["seq"]

    def forge(con):
        # Renumber the tail to make room (two steps: seq is the primary key).
        con.execute("UPDATE audit SET seq = -seq - 1 WHERE seq >= ?", (n,))
        con.execute("UPDATE audit SET seq = -seq WHERE seq < 0")
        prev = bytes(con.execute("SELECT hash FROM audit WHERE seq = ?", (n - 1,)).fetchone()[0])
        fake = dict(all_rows[n - 1])
        fake.update(seq=n, actor="admin-1", role="admin", action="contacts.read",
                    decision="allow", reason="allowed", fields="income,health",
                    request_id="forged-0001", detail="", channel="", purpose="service")
        fake["prev_hash"] = prev
        fake["hash"] = row_hash(fake, prev)
        cols = ", ".join(fake)
        con.execute(f"INSERT INTO audit ({cols}) VALUES ({', '.join('?' for _ in fake)})",
                    list(fake.values()))
    tamper(srv, forge)
    # The forgery links correctly to its predecessor; the entry after it no
    # longer does, and the reason names both candidates.
    assert_detected(srv, n + 1, "broken_link", also=f"entry {n + 1} does not link to entry {n}")


def test_two_swapped_entries_are_detected_at_the_first(srv):
    activity(srv)
    n = rows(srv.db, "action = 'contacts.read'")[0]["seq"]

    def swap(con):
        r1 = dict(con.execute("SELECT * FROM audit WHERE seq = ?", (n,)).fetchone())
        r2 = dict(con.execute("SELECT * FROM audit WHERE seq = ?", (n + 1,)).fetchone())
        r1["seq"], r2["seq"] = n + 1, n
        con.execute("DELETE FROM audit WHERE seq IN (?, ?)", (n, n + 1))
        for r in (r2, r1):
            con.execute(f"INSERT INTO audit ({', '.join(r)}) VALUES ({', '.join('?' for _ in r)})",
                        list(r.values()))
    tamper(srv, swap)
    assert_detected(srv, n, "broken_link")


def test_a_tail_cut_after_a_signed_checkpoint_is_detected(srv):
    activity(srv)
    srv.stop()  # signs a checkpoint over everything so far
    size = checkpoint_sizes(srv.db)[-1]
    assert size == rows(srv.db)[-1]["seq"]
    cut = size - 3
    tamper(srv, lambda con: con.execute("DELETE FROM audit WHERE seq > ?", (cut,)))
    assert_detected(srv, cut + 1, "truncated", also=f"ends after entry {cut}", at_open=True)


def test_a_tail_cut_together_with_its_checkpoints_is_caught_by_the_anchor(srv):
    # An attacker with the database file deletes the last entries AND every
    # checkpoint that covered them; the signed anchor outside the database
    # still covers the full length.
    activity(srv)
    srv.stop()
    size = checkpoint_sizes(srv.db)[-1]
    cut = size - 3

    def cut_both(con):
        con.execute("DROP TRIGGER IF EXISTS checkpoint_no_delete")
        con.execute("DELETE FROM audit WHERE seq > ?", (cut,))
        con.execute("DELETE FROM audit_checkpoint WHERE size > ?", (cut,))
    tamper(srv, cut_both)
    assert max(checkpoint_sizes(srv.db) or [0]) <= cut
    assert_detected(srv, cut + 1, "truncated", also=f"ends after entry {cut}")


def test_an_export_verifies_only_against_a_signed_checkpoint(srv):
    activity(srv)
    srv.restart()  # the shutdown checkpoint covers everything so far
    st, hdrs, nd = srv.raw("GET", "/v1/audit/export?format=ndjson",
                           headers={"Authorization": f"Bearer {srv.tokens['auditor']}"})
    assert st == 200
    lines = nd.splitlines(keepends=True)[:-1]  # the export's own entry is past the checkpoint
    pub = os.path.join(srv.data, "keys", "audit-signing.pub.pem")
    held = os.path.join(srv.tmp, "held-checkpoint.json")
    with open(os.path.join(srv.data, "audit-anchor.json"), "rb") as f, open(held, "wb") as g:
        g.write(f.read())
    def verify(chunk, *extra):
        path = os.path.join(srv.tmp, "export.ndjson")
        with open(path, "wb") as f:
            f.writelines(chunk)
        return cli("audit", "verify", "--export", path, "--pubkey", pub, *extra, check=False)
    code, out, err = verify(lines)
    assert code == 2, (code, out, err)  # no checkpoint: refused, not "ok"
    code, out, err = verify(lines, "--checkpoint", held)
    assert code == 0 and "ok:" in out, (out, err)
    code, out, err = verify(lines[:5], "--checkpoint", held)
    assert code == 5 and "(truncated)" in out, (out, err)
    code, out, err = verify([], "--checkpoint", held)
    assert code == 5, (out, err)


def test_a_consistent_rewrite_is_caught_only_by_the_signed_checkpoint(srv):
    activity(srv)
    srv.stop()
    denial = rows(srv.db, "decision = 'deny' AND action = 'contacts.erase'")[0]["seq"]
    sizes = checkpoint_sizes(srv.db)
    anchor = min(s for s in sizes if s >= denial)
    before = max([0] + [s for s in sizes if s < denial])

    def rewrite(con):
        # Hide the denial and recompute every hash from there on, as an
        # attacker without the signing key would: the chain is consistent.
        con.execute("UPDATE audit SET decision = 'allow', reason = 'allowed' WHERE seq = ?", (denial,))
        con.row_factory = sqlite3.Row
        all_rows = [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY seq")]
        prev = bytes(32)
        for r in all_rows:
            h = row_hash(r, prev)
            con.execute("DELETE FROM audit WHERE seq = ?", (r["seq"],))
            r["prev_hash"], r["hash"] = prev, h
            con.execute(f"INSERT INTO audit ({', '.join(r)}) VALUES ({', '.join('?' for _ in r)})",
                        list(r.values()))
            prev = h
    tamper(srv, rewrite)
    # The chain alone now verifies: only the checkpoint signature catches it.
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    prev = bytes(32)
    for r in con.execute("SELECT * FROM audit ORDER BY seq"):
        assert bytes(r["prev_hash"]) == prev and bytes(r["hash"]) == row_hash(dict(r), prev)
        prev = bytes(r["hash"])
    con.close()
    assert_detected(srv, anchor, "rewritten",
                    also=f"entries {before + 1} to {anchor} were rewritten")


# ---- fail closed -----------------------------------------------------------

def test_when_the_audit_cannot_be_written_requests_fail_closed():
    srv = Server(env={"CONSENTD_TEST_FAULTS": "1"})
    try:
        cid = srv.create_contact(**ALICE)
        before = rows(srv.db)
        fault = srv.db + ".fault-audit"
        open(fault, "w").close()
        st, hdrs, data = srv.raw("GET", f"/v1/contacts/{cid}?purpose=service",
                                 headers={"Authorization": f"Bearer {srv.tokens['admin']}"})
        assert st == 503, (st, data)
        assert hdrs["content-type"] == "application/problem+json", hdrs
        for value in ("Alice", "Quarrington", "example.org", "98765", "zyzzyvitis", "7946"):
            assert value.lower() not in data.decode().lower(), data
        st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin", json={"name": "Mallory"})
        assert_problem(st, body, 503, "unavailable")
        st, body = srv.call("POST", "/v1/contacts", token="admin", json=BOB)
        assert_problem(st, body, 503)
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing", "channel": "email"})
        assert_problem(st, body, 503)
        st, body = srv.call("GET", "/v1/audit", token="auditor")
        assert_problem(st, body, 503)
        assert rows(srv.db) == before  # nothing was audited, so nothing happened
        os.remove(fault)
        st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
        assert st == 200 and body["fields"]["name"] == ALICE["name"], body
        con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
        assert con.execute("SELECT count(*) FROM contact").fetchone()[0] == 1
        con.close()
        srv.stop()
        code, out, _ = cli("audit", "verify", "--data", srv.data, check=False)
        assert code == 0, out
    finally:
        srv.close()


# ---- exact entries ---------------------------------------------------------

def test_every_route_writes_exactly_the_expected_entry(srv):
    seen = [rows(srv.db)[-1]["seq"] if rows(srv.db) else 0]

    def expect(**want):
        new = rows(srv.db, "seq > ?", (seen[0],))
        assert len(new) == 1, new
        e = new[0]
        seen[0] = e["seq"]
        fields = want.pop("fields", "")
        for k, v in want.items():
            if k == "detail":
                assert json.loads(e["detail"] or "{}") == v, (k, e)
            else:
                assert e[k] == v, (k, v, e)
        assert sorted(filter(None, e["fields"].split(","))) == sorted(filter(None, fields.split(","))), e
        assert e["client"] == "127.0.0.1" and e["request_id"], e
        return e

    def std(actor, role, action, record_id="", purpose="", channel="", decision="allow", reason="",
            fields=""):
        return dict(actor=actor, role=role, action=action, record_id=record_id, purpose=purpose,
                    channel=channel, decision=decision, reason=reason, fields=fields)

    cid = srv.create_contact(**ALICE)
    expect(**std("admin-1", "admin", "contacts.create", cid, reason="created",
                 fields="email,name,phone,income,health"))
    st, _ = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="support")
    assert st == 200
    # Service needs no consent (legal basis: contract); the reason says so.
    expect(**std("support-1", "support", "contacts.read", cid, "service", reason="not_required",
                 fields="email,name,phone,source,owner"))
    q = urllib.parse.quote(ALICE["email"])
    st, _ = srv.call("GET", f"/v1/contacts?email={q}&purpose=service", token="admin")
    assert st == 200
    expect(**std("admin-1", "admin", "contacts.lookup", cid, "service", reason="not_required",
                 fields="email,name,phone,income,health,source,owner"))
    st, _ = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin", json={"name": "A. Q."})
    assert st == 200
    expect(**std("admin-1", "admin", "contacts.update", cid, reason="updated", fields="name"))
    body = srv.set_consent(cid, "marketing", "email", "granted")
    expect(**std("admin-1", "admin", "consents.write", cid, "marketing", "email", reason="granted"),
           detail={"method": "api", "receipt_id": body["receipt_id"]})
    st, _ = srv.call("GET", f"/v1/contacts/{cid}/consents", token="marketing")
    assert st == 200
    expect(**std("marketing-1", "marketing", "consents.read", cid, reason="allowed"))
    srv.check("marketing", "email", contact_id=cid)
    expect(**std("marketing-1", "marketing", "consent.check", cid, "marketing", "email",
                 reason="granted"))
    st, _ = srv.call("GET", f"/v1/contacts/{cid}/receipts/{body['receipt_id']}", token="support")
    assert st == 200
    expect(**std("support-1", "support", "receipts.read", cid, reason="allowed"),
           detail={"receipt_id": body["receipt_id"]})
    st, rq = srv.call("POST", "/v1/requests", token="support",
                      json={"contact_id": cid, "kind": "access", "jurisdiction": "gdpr"})
    assert st == 201, rq
    expect(**std("support-1", "support", "requests.create", cid, reason="received"),
           detail={"request_id": rq["id"], "kind": "access", "jurisdiction": "gdpr", "origin": "staff"})
    st, _ = srv.call("POST", f"/v1/requests/{rq['id']}/transitions", token="support",
                     json={"to": "verified", "reason": "identity checked"})
    assert st == 200
    expect(**std("support-1", "support", "requests.transition", cid, reason="verified"),
           detail={"request_id": rq["id"], "kind": "access", "from": "received", "to": "verified"})
    st, _ = srv.call("GET", f"/v1/requests/{rq['id']}", token="auditor")
    assert st == 200
    expect(**std("auditor-1", "auditor", "requests.read", cid, reason="allowed", fields="reason"),
           detail={"request_id": rq["id"]})
    st, _ = srv.call("GET", "/v1/requests", token="auditor")
    assert st == 200
    expect(**std("auditor-1", "auditor", "requests.list", reason="allowed"), detail={"count": 1})
    st, _ = get_audit(srv, f"contact={cid}&limit=5")
    assert st == 200
    expect(**std("auditor-1", "auditor", "audit.read", cid, reason="allowed"),
           detail={"resource": "entries", "contact": cid, "limit": 5, "count": 5})
    export(srv, "csv", "action=contacts.read")
    expect(**std("auditor-1", "auditor", "audit.export", reason="allowed"),
           detail={"resource": "entries", "action": "contacts.read", "format": "csv"})
    st, v = srv.call("GET", "/v1/audit/verify", token="auditor")
    assert st == 200 and v["ok"], v
    expect(**std("auditor-1", "auditor", "audit.verify", reason="intact"),
           detail={"ok": True, "entries": v["entries"], "first_bad_seq": 0})
    st, _ = srv.call("GET", "/v1/audit/checkpoints/latest", token="auditor")
    assert st == 200
    expect(**std("auditor-1", "auditor", "audit.read", reason="allowed"),
           detail={"resource": "checkpoint"})
    st, _ = srv.call("GET", f"/v1/contacts/{cid}?purpose=service")
    assert st == 401
    expect(**std("", "", "auth.failure", decision="deny", reason="missing_token"),
           detail={"route": "GET /v1/contacts/{id}"})
    st, _ = srv.call("GET", "/v1/audit", token="cd_this-token-does-not-exist")
    assert st == 401
    expect(**std("", "", "auth.failure", decision="deny", reason="unknown_token"),
           detail={"route": "GET /v1/audit"})
    st, _ = srv.call("DELETE", f"/v1/contacts/{cid}", token="marketing")
    assert st == 403
    expect(**std("marketing-1", "marketing", "contacts.erase", cid, decision="deny",
                 reason="role_denied"))
    st, _ = get_audit(srv, token="support")
    assert st == 403
    expect(**std("support-1", "support", "audit.read", decision="deny", reason="role_denied"))
    st, _ = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert st == 200
    expect(**std("admin-1", "admin", "contacts.erase", cid, reason="erased"))
    # Validation errors touch nothing and are not audited.
    st, _ = get_audit(srv, "limit=0")
    assert st == 400
    assert rows(srv.db, "seq > ?", (seen[0],)) == []


# ---- no personal data ------------------------------------------------------

def test_no_personal_value_reaches_the_audit_trail_or_its_exports(srv):
    secrets = dict(ALICE, postal_address="17 Quillwort Lane, Upper Snodsbury",
                   notes="mentioned divorce from Gideon Pettifer", family="two children, Ottoline")
    cid = srv.create_contact(**secrets)
    srv.set_consent(cid, "marketing", "email", "granted",
                    evidence={"ip": "203.0.113.77", "user_agent": "Mozilla/5.0 Zyxelbrowser",
                              "form": "https://example.org/signup?ref=quarrington"})
    q = urllib.parse.quote(ALICE["email"])
    for role in ("admin", "support"):
        srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token=role)
    srv.call("GET", f"/v1/contacts?email={q}&purpose=service", token="admin")
    srv.call("GET", f"/v1/contacts?email=unknown.person%40example.com&purpose=service", token="admin")
    srv.check("marketing", "email", email=ALICE["email"])
    srv.check("marketing", "email", email="never.seen@example.com")
    srv.call("PATCH", f"/v1/contacts/{cid}", token="admin",
             json={"phone": "+1 415 555 0199", "name": "Alice Q. Pettifer"})
    srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
    _, nd = export(srv, "ndjson")
    _, cs = export(srv, "csv")
    st, page = get_audit(srv, "limit=1000")
    assert st == 200
    srv.stop()
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    table = "\n".join(repr(r) for r in con.execute("SELECT * FROM audit"))
    table += "\n".join(repr(r) for r in con.execute("SELECT * FROM audit_checkpoint"))
    con.close()
    _, cli_export, _ = cli("audit", "export", "--data", srv.data)
    blobs = {"audit table": table, "ndjson export": nd.decode(), "csv export": cs.decode(),
             "GET /v1/audit": json.dumps(page), "cli export": cli_export}
    values = ["alice.quarrington@example.org", "Quarrington", "+442079460321", "7946 0321",
              "98765", "zyzzyvitis", "Quillwort", "Snodsbury", "Gideon", "Pettifer", "Ottoline",
              "203.0.113.77", "Zyxelbrowser", "unknown.person", "never.seen", "4155550199",
              "555 0199", "ref=quarrington"]
    for where, text in blobs.items():
        for v in values:
            assert not contains_value(text, v), (v, where)
    assert nd.count(b"\n") >= 10


# ---- append-only storage ---------------------------------------------------

def test_the_audit_tables_refuse_update_and_delete(srv):
    activity(srv)
    srv.stop()
    con = sqlite3.connect(srv.db)
    n = con.execute("SELECT max(seq) FROM audit").fetchone()[0]
    attempts = [
        ("UPDATE audit SET actor = 'x' WHERE seq = 1", ()),
        ("DELETE FROM audit WHERE seq = ?", (n,)),
        ("DELETE FROM audit", ()),
        ("INSERT INTO audit SELECT * FROM audit WHERE seq = 1", ()),
        ("INSERT INTO audit (seq, time_us, actor, role, action, record_id, purpose, channel, decision,"
         " reason, fields, request_id, client, detail, prev_hash, hash) SELECT seq + 5, time_us,"
         " actor, role, action, record_id, purpose, channel, decision, reason, fields, request_id,"
         " client, detail, prev_hash, hash FROM audit WHERE seq = ?", (n,)),
        ("UPDATE audit_checkpoint SET size = size + 1", ()),
        ("DELETE FROM audit_checkpoint", ()),
    ]
    for sql, params in attempts:
        try:
            con.execute(sql, params)
        except sqlite3.DatabaseError as e:
            assert "append" in str(e) or "UNIQUE" in str(e), (sql, e)
            continue
        finally:
            con.rollback()
        raise AssertionError(f"the database accepted: {sql}")
    con.close()
    code, out, _ = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0, out


# ---- the auditor API -------------------------------------------------------

def test_auditor_filters_and_pages_through_the_trail(srv):
    a, b = activity(srv)
    all_rows = rows(srv.db)

    def seqs(body):
        return [e["seq"] for e in body["entries"]]

    cases = {
        f"contact={a}": [r["seq"] for r in all_rows if r["record_id"] == a],
        "actor=support-1": [r["seq"] for r in all_rows if r["actor"] == "support-1"],
        "action=consent.check": [r["seq"] for r in all_rows if r["action"] == "consent.check"],
        "purpose=marketing": [r["seq"] for r in all_rows if r["purpose"] == "marketing"],
        "decision=deny": [r["seq"] for r in all_rows if r["decision"] == "deny"],
        f"actor=admin-1&contact={b}": [r["seq"] for r in all_rows
                                       if r["actor"] == "admin-1" and r["record_id"] == b],
    }
    for query, want in cases.items():
        st, body = get_audit(srv, query)
        assert st == 200, (query, body)
        assert seqs(body) == want and want, (query, seqs(body), want)
        assert body["next"] is None, body
    # Time range: [since, until) by the entries' own times.
    t = [r["time_us"] for r in all_rows]
    lo, hi = all_rows[3], all_rows[7]

    def rfc3339(us):
        import datetime
        d = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=us)
        return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    st, body = get_audit(srv, f"since={rfc3339(lo['time_us'])}&until={rfc3339(hi['time_us'])}")
    assert st == 200, body
    assert seqs(body) == [r["seq"] for r in all_rows if lo["time_us"] <= r["time_us"] < hi["time_us"]]
    assert t == sorted(t)
    # Entries are rendered like the NDJSON export.
    st, body = get_audit(srv, f"contact={a}&limit=1")
    e = body["entries"][0]
    assert list(e) == ["seq", "time", "actor", "role", "action", "record_id", "purpose", "channel",
                       "decision", "reason", "fields", "request_id", "client", "detail",
                       "prev_hash", "hash"], e
    assert e["hash"] == bytes(all_rows[e["seq"] - 1]["hash"]).hex()
    # Pagination: the admin's entries, two at a time, with the cursor.
    want = [r["seq"] for r in all_rows if r["actor"] == "admin-1"]
    got, cursor, pages = [], None, 0
    while True:
        q = "actor=admin-1&limit=2" + (f"&after={cursor}" if cursor else "")
        st, body = get_audit(srv, q)
        assert st == 200 and len(body["entries"]) <= 2, body
        got += seqs(body)
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and int(cursor) == got[-1]
    assert got == want and pages == (len(want) + 1) // 2, (got, want, pages)
    # The default page is 100 entries; the cap is 1000.
    for _ in range(110):
        srv.check("marketing", "email", contact_id=a)
    st, body = get_audit(srv)
    assert st == 200 and len(body["entries"]) == 100 and body["next"] == "100", body["next"]
    st, body = get_audit(srv, "limit=1000")
    assert st == 200 and body["next"] is None and len(body["entries"]) > 100
    # Bad values and unknown keys are 400 problem+json.
    for bad in ["limit=0", "limit=1001", "limit=ten", "limit=-1", "after=-5", "after=1.5",
                "after=99999999999999999999", "since=yesterday", "until=2024-13-01T00:00:00Z",
                "since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", "decision=maybe",
                "purpose=Marketing", "action=DROP%20TABLE", "contact=a%2Fb", "contact=",
                "actor=" + "x" * 65, "actor=a%0Ab", "format=csv", "colour=blue", "actor=a&actor=b",
                "limit"]:
        st, hdrs, data = srv.raw("GET", f"/v1/audit?{bad}",
                                 headers={"Authorization": f"Bearer {srv.tokens['auditor']}"})
        assert st == 400, (bad, st, data)
        assert hdrs["content-type"] == "application/problem+json", (bad, hdrs)
    for path in ("/v1/audit/verify?deep=1", "/v1/audit/checkpoints/latest?x=y",
                 "/v1/audit/export?format=xml", "/v1/audit/export?limit=5"):
        st, body = srv.call("GET", path, token="auditor")
        assert_problem(st, body, 400)
    # Roles without audit.read are refused, and the refusal is on the record
    # under the action attempted.
    for role in ("marketing", "support"):
        for path, action in (("/v1/audit", "audit.read"), ("/v1/audit/export", "audit.export"),
                             ("/v1/audit/verify", "audit.verify"),
                             ("/v1/audit/checkpoints/latest", "audit.read")):
            st, body = srv.call("GET", path, token=role)
            assert_problem(st, body, 403, "forbidden")
            last = rows(srv.db)[-1]
            assert (last["actor"], last["action"], last["decision"], last["reason"]) == (
                f"{role}-1", action, "deny", "role_denied"), last


def test_auditor_exports_ndjson_and_csv(srv):
    activity(srv)
    hdrs, nd = export(srv, "ndjson")
    assert hdrs["content-type"] == "application/x-ndjson", hdrs
    lines = nd.decode().splitlines()
    db = rows(srv.db)
    # The export is a snapshot taken after its own entry was committed.
    assert [json.loads(x)["seq"] for x in lines] == [r["seq"] for r in db][:len(lines)]
    assert json.loads(lines[-1])["action"] == "audit.export"
    hdrs, cs = export(srv, "csv", "decision=deny")
    assert hdrs["content-type"].startswith("text/csv"), hdrs
    table = list(csv.reader(io.StringIO(cs.decode(), newline="")))
    assert table[0][:5] == ["seq", "time", "actor", "role", "action"], table[0]
    assert [int(r[0]) for r in table[1:]] == [r["seq"] for r in db if r["decision"] == "deny"]
    # Default format is NDJSON; an export can resume after a cursor.
    st, hdrs, data = srv.raw("GET", "/v1/audit/export?after=5",
                             headers={"Authorization": f"Bearer {srv.tokens['auditor']}"})
    assert st == 200 and json.loads(data.splitlines()[0])["seq"] == 6
    # The offline verifier accepts the export as is.
    path = os.path.join(srv.tmp, "audit.ndjson")
    with open(path, "wb") as f:
        f.write(nd)
    pub = os.path.join(srv.data, "keys", "audit-signing.pub.pem")
    anchor = os.path.join(srv.data, "audit-anchor.json")
    code, out, err = cli("audit", "verify", "--export", path, "--pubkey", pub, "--checkpoint", anchor,
                         check=False)
    assert code == 0, (out, err)


def test_a_principal_named_with_64_cjk_characters_is_recorded_whole(srv):
    """maxLength counts characters: a name of 64 CJK characters (192 bytes)
    is accepted, acts, is found by the actor filter and verifies in an
    export; 65 are refused."""
    name = "\u540d" * 64
    tok = srv.token("auditor", name)
    st, body = srv.call("GET", "/v1/audit?limit=1", token=tok)
    assert st == 200, body
    q = urllib.parse.quote(name)
    st, body = srv.call("GET", f"/v1/audit?actor={q}", token=tok)
    assert st == 200 and body["entries"], body
    assert all(e["actor"] == name for e in body["entries"]), body
    st, body = srv.call("GET", "/v1/audit?actor=" + urllib.parse.quote(name + "\u540d"), token=tok)
    assert_problem(st, body, 400, "invalid-request")
    code, _, err = cli("token", "create", "--data", srv.data, "--role", "auditor", "--name", name + "\u540d",
                       check=False)
    assert code != 0 and "64 characters" in err, err
    st, hdrs, data = srv.raw("GET", "/v1/audit/export", headers={"Authorization": f"Bearer {tok}"})
    assert st == 200 and name in data.decode(), data[:200]
    path = os.path.join(srv.tmp, "cjk.ndjson")
    with open(path, "wb") as f:
        f.write(data)
    pub = os.path.join(srv.data, "keys", "audit-signing.pub.pem")
    anchor = os.path.join(srv.data, "audit-anchor.json")
    code, out, err = cli("audit", "verify", "--export", path, "--pubkey", pub, "--checkpoint", anchor,
                         check=False)
    assert code == 0, (out, err)


def test_auditor_verifies_an_export_independently_with_the_latest_checkpoint(srv):
    activity(srv)
    srv.restart()  # shutdown signs a checkpoint over the activity
    st, latest = srv.call("GET", "/v1/audit/checkpoints/latest", token="auditor")
    assert st == 200, latest
    cp = latest["checkpoint"]
    assert latest["signature_valid"] is True and latest["algorithm"] == "Ed25519", latest
    with open(os.path.join(srv.data, "keys", "audit-signing.pub.pem")) as f:
        assert latest["public_key"] == f.read()
    assert latest["head"]["seq"] >= cp["size"], latest
    _, nd = export(srv)
    # Recompute the chain from the export alone, as docs/audit.md describes.
    import datetime
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    prev, hashes = bytes(32), {}
    for line in nd.decode().splitlines():
        e = json.loads(line)
        t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        e["time_us"] = (t - epoch) // datetime.timedelta(microseconds=1)
        e["detail"] = json.dumps(e["detail"], separators=(",", ":"), ensure_ascii=False) if e["detail"] else ""
        assert bytes.fromhex(e["prev_hash"]) == prev
        h = row_hash(e, prev)
        assert h.hex() == e["hash"], e
        hashes[e["seq"]] = h
        prev = h
    assert hashes[cp["size"]].hex() == cp["root"], (cp, len(hashes))
    # And the signature, with OpenSSL alone.
    # openssl is a declared dependency (scripts/deps.sh); without it the
    # signature would silently go unchecked, so its absence fails the test.
    assert shutil.which("openssl"), "openssl is missing (scripts/deps.sh installs it)"
    t = datetime.datetime.strptime(cp["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    us = (t - epoch) // datetime.timedelta(microseconds=1)
    msg = b"consentd-checkpoint-v1\0" + struct.pack(">q", cp["size"]) + bytes.fromhex(cp["root"]) + struct.pack(">q", us)
    d = tempfile.mkdtemp(dir=srv.tmp)
    for name, data in (("cp.msg", msg), ("cp.sig", bytes.fromhex(cp["sig"])),
                       ("pub.pem", latest["public_key"].encode())):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
                        "-in", "cp.msg", "-sigfile", "cp.sig"], cwd=d, capture_output=True, text=True)
    assert p.returncode == 0 and "Verified" in p.stdout, (p.stdout, p.stderr)


if __name__ == "__main__":
    run(globals())
