"""The audit walk: one request (or more) on EVERY route the code serves, each
with its own X-Request-Id, and for each the exact audit entries it wrote:
action, actor, role, record id, purpose, channel, decision, reason, fields
and detail. Every area gets its allowed path and at least one refusal.

The list of routes comes from the route tables in service/h_*.c (as in
test_docs.py), so a new route that the walk does not exercise fails here
until someone decides what it must audit."""
import glob
import hashlib
import json
import os
import re
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import contains_value, assert_problem, cli, run  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Personal values sent during the walk; none may reach the audit table.
ALICE = {"email": "Walk.Alice.Quennell@Example.org", "name": "Alice Quennell",
         "phone": "+44 20 7946 0813", "income": 73219, "health": "acute florbigosis",
         "collected_for": ["service", "marketing"], "source": "walk-signup"}
BOB = {"email": "walk.bob.tiverton@example.net", "name": "Bob Tiverton",
       "phone": "+44 20 7946 0977", "collected_for": ["service", "marketing"]}
CAROL = {"email": "walk.carol.ushant@example.com", "name": "Carol Ushant",
         "collected_for": ["marketing"]}
IMPORTED = [{"email": "walk.dora.imported@example.org", "name": "Dora Vexhill",
             "collected_for": ["marketing"]},
            {"email": "walk.ezra.imported@example.org", "name": "Ezra Wimbourne",
             "phone": "+44 20 7946 0555", "collected_for": ["service"]}]
SUPPRESSED = ["walk.fay.optout@example.org", "walk.gus.optout@example.org",
              "walk.hal.optout@example.org"]
EVIDENCE_IP = "198.51.100.231"
USER_AGENT = "Mozilla/5.0 Quibblefox/77"
PERSONAL = [ALICE["email"], "Quennell", "7946 0813", "+442079460813", "73219", "florbigosis",
            BOB["email"], "Tiverton", "7946 0977", "+442079460977", CAROL["email"], "Ushant",
            "walk.dora", "Vexhill", "walk.ezra", "Wimbourne", "+442079460555", "7946 0555",
            *SUPPRESSED, "optout@example", EVIDENCE_IP, "Quibblefox", "Zebediah", "Nonesuch"]

FIELDS = ("action", "actor", "role", "record_id", "purpose", "channel", "decision", "reason",
          "fields")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
B64ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


# ---- the routes the code serves ---------------------------------------------

def code_routes():
    """(METHOD, pattern) of every route in service/h_*.c, as test_docs.py reads them."""
    routes = set()
    for path in glob.glob(os.path.join(ROOT, "service", "h_*.c")):
        for method, pattern in re.findall(r'\{\s*"([A-Z]+)",\s*"(/[^"]*)"', open(path).read()):
            routes.add((method, pattern))
    return routes


def pattern_matches(pattern, path):
    rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[A-Za-z0-9_.-]+", re.escape(pattern)) + "$"
    return re.match(rx, path.split("?", 1)[0]) is not None


# ---- the walk ----------------------------------------------------------------

class Walk:
    """Sends requests with a fresh X-Request-Id each and remembers which
    route patterns were exercised."""

    def __init__(self, srv):
        self.srv = srv
        self.n = 0
        self.seen = set()
        self.checked = 0

    def send(self, method, pattern, path, token=None, json_body=None, body=None,
             content_type=None, headers=None):
        """Returns (request id, status, headers, bytes)."""
        assert pattern_matches(pattern, path), (pattern, path)
        self.n += 1
        rid = f"walk-{self.n:03d}"
        h = {"X-Request-Id": rid, **(headers or {})}
        if token is not None:
            h["Authorization"] = "Bearer " + self.srv.tokens.get(token, token)
        if json_body is not None:
            body = json.dumps(json_body)
            h.setdefault("Content-Type", "application/json")
        if content_type is not None:
            h["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        st, hdrs, data = self.srv.raw(method, path, body=body, headers=h)
        assert hdrs.get("x-request-id") == rid, (rid, hdrs)
        self.seen.add((method, pattern))
        return rid, st, hdrs, data

    def call(self, *a, **kw):
        """Like send, with the body parsed as JSON when it is JSON."""
        rid, st, hdrs, data = self.send(*a, **kw)
        ctype = hdrs.get("content-type", "")
        if "json" in ctype and "ndjson" not in ctype:
            return rid, st, json.loads(data)
        return rid, st, data.decode(errors="replace")

    def entries(self, rid):
        return self.srv.audit_rows("request_id = ?", (rid,))

    def expect(self, rid, *wants):
        """The request's entries are exactly wants, in order. Each want names
        every column of FIELDS (default ""), and detail: a dict (exact), a
        callable (checked), or absent (must be empty)."""
        got = self.entries(rid)
        assert len(got) == len(wants), (rid, [(e["action"], e["reason"]) for e in got], wants)
        for e, want in zip(got, wants):
            want = dict(want)
            detail = want.pop("detail", None)
            customer = want.get("actor") == "customer"
            for k in FIELDS:
                v = want.get(k, "")
                if k == "fields":
                    assert sorted(filter(None, e[k].split(","))) == sorted(filter(None, v.split(","))), (rid, k, e)
                else:
                    assert e[k] == v, (rid, k, v, e)
            d = json.loads(e["detail"]) if e["detail"] else {}
            if callable(detail):
                assert detail(d), (rid, d)
            else:
                assert d == (detail or {}), (rid, d, detail)
            if customer:
                assert e["role"] == "customer", e
                assert re.match(r"^h:[0-9a-f]{32}$", e["client"]), (rid, e["client"])
                assert "127.0.0.1" not in e["client"], e
            else:
                assert e["client"] == "127.0.0.1", (rid, e["client"])
            self.checked += 1
        return got

    def expect_none(self, rid):
        assert self.entries(rid) == [], (rid, self.entries(rid))


def staff(actor_role, action, record_id="", purpose="", channel="", decision="allow", reason="",
          fields="", detail=None):
    role = actor_role
    return dict(actor=f"{role}-1", role=role, action=action, record_id=record_id, purpose=purpose,
                channel=channel, decision=decision, reason=reason, fields=fields, detail=detail)


def denied(role, action, record_id="", purpose=""):
    return staff(role, action, record_id, purpose, decision="deny", reason="role_denied")


def customer(action, record_id="", purpose="", channel="", decision="allow", reason="", detail=None):
    return dict(actor="customer", role="customer", action=action, record_id=record_id,
                purpose=purpose, channel=channel, decision=decision, reason=reason, detail=detail)


def data_tables(srv):
    """Every row of every table but the audit's own: what 'no data change' means."""
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
             if not r[0].startswith("audit") and not r[0].startswith("sqlite_")]
    out = {n: sorted(repr(r) for r in con.execute(f"SELECT * FROM {n}")) for n in names}
    con.close()
    return out


def csrf_of(html):
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


FORM = "application/x-www-form-urlencoded"


# ---- the scenario --------------------------------------------------------------

def test_every_route_writes_exactly_its_audit_entries_and_the_trail_verifies(srv):
    w = Walk(srv)
    routes = code_routes()
    assert len(routes) >= 27, sorted(routes)

    # -- operations: no token, and never an audit entry --
    before = len(srv.audit_rows())
    for path in ("/healthz", "/readyz", "/metrics"):
        rid, st, _, _ = w.send("GET", path, path)
        assert st == 200, (path, st)
        w.expect_none(rid)
    assert len(srv.audit_rows()) == before

    # -- contacts --
    rid, st, body = w.call("POST", "/v1/contacts", "/v1/contacts", token="admin", json_body=ALICE)
    assert st == 201, body
    alice = body["id"]
    w.expect(rid, staff("admin", "contacts.create", alice, reason="created",
                        fields="email,name,phone,income,health"))
    rid, st, body = w.call("POST", "/v1/contacts", "/v1/contacts", token="admin", json_body=BOB)
    assert st == 201, body
    bob = body["id"]
    w.expect(rid, staff("admin", "contacts.create", bob, reason="created", fields="email,name,phone"))
    rid, st, body = w.call("POST", "/v1/contacts", "/v1/contacts", token="auditor",
                           json_body={"email": "walk.zebediah@example.org", "name": "Zebediah Nonesuch",
                                      "collected_for": ["service"]})
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "contacts.create"))

    rid, st, body = w.call("GET", "/v1/contacts/{id}", f"/v1/contacts/{alice}?purpose=service",
                           token="support")
    assert st == 200 and body["fields"]["name"] == ALICE["name"], body
    w.expect(rid, staff("support", "contacts.read", alice, "service", reason="not_required",
                        fields="email,name,phone,source,owner"))
    rid, st, body = w.call("GET", "/v1/contacts/{id}", f"/v1/contacts/{alice}?purpose=service",
                           token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "contacts.read", alice, "service"))
    # 401: no token, and a token that does not exist.
    rid, st, body = w.call("GET", "/v1/contacts/{id}", f"/v1/contacts/{alice}?purpose=service")
    assert_problem(st, body, 401)
    w.expect(rid, dict(action="auth.failure", decision="deny", reason="missing_token",
                       detail={"route": "GET /v1/contacts/{id}"}))
    rid, st, body = w.call("PATCH", "/v1/contacts/{id}", f"/v1/contacts/{alice}",
                           token="cd_walk-no-such-token", json_body={"name": "Zebediah Nonesuch"})
    assert_problem(st, body, 401)
    w.expect(rid, dict(action="auth.failure", decision="deny", reason="unknown_token",
                       detail={"route": "PATCH /v1/contacts/{id}"}))

    q = urllib.parse.quote(ALICE["email"])
    rid, st, body = w.call("GET", "/v1/contacts", f"/v1/contacts?email={q}&purpose=service",
                           token="admin")
    assert st == 200, body
    w.expect(rid, staff("admin", "contacts.lookup", alice, "service", reason="not_required",
                        fields="email,name,phone,income,health,source,owner"))
    rid, st, body = w.call("GET", "/v1/contacts", f"/v1/contacts?email={q}&purpose=service",
                           token="auditor")
    assert_problem(st, body, 403)
    # A refusal is audited under the action that was attempted (the route's).
    w.expect(rid, denied("auditor", "contacts.lookup", "", "service"))

    rid, st, body = w.call("PATCH", "/v1/contacts/{id}", f"/v1/contacts/{alice}", token="support",
                           json_body={"name": "Alice Q. Quennell", "phone": "+44 20 7946 0813"})
    assert st == 200, body
    w.expect(rid, staff("support", "contacts.update", alice, reason="updated", fields="name,phone"))
    # Widening collected_for is a right of its own; the entry records both lists.
    rid, st, body = w.call("PATCH", "/v1/contacts/{id}", f"/v1/contacts/{alice}", token="support",
                           json_body={"collected_for": ["service", "marketing", "care"]})
    assert_problem(st, body, 403)
    w.expect(rid, staff("support", "contacts.update", alice, decision="deny", reason="purpose_widening_denied",
                        fields="collected_for", detail={"collected_for_old": "service,marketing",
                                                        "collected_for_new": "service,marketing,care"}))
    rid, st, body = w.call("PATCH", "/v1/contacts/{id}", f"/v1/contacts/{alice}", token="marketing",
                           json_body={"name": "Zebediah Nonesuch"})
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "contacts.update", alice))

    # -- consents --
    rid, st, body = w.call("PUT", "/v1/contacts/{id}/consents/{name}",
                           f"/v1/contacts/{alice}/consents/marketing", token="admin",
                           json_body={"channel": "email", "status": "granted", "source": "walk",
                                      "evidence": {"ip": EVIDENCE_IP, "user_agent": USER_AGENT}})
    assert st == 200, body
    w.expect(rid, staff("admin", "consents.write", alice, "marketing", "email", reason="granted",
                        detail={"method": "api", "receipt_id": body["receipt_id"]}))
    alice_receipt = body["receipt_id"]
    rid, st, body = w.call("PUT", "/v1/contacts/{id}/consents/{name}",
                           f"/v1/contacts/{bob}/consents/marketing", token="admin",
                           json_body={"channel": "email", "status": "granted", "source": "walk"})
    assert st == 200, body
    w.expect(rid, staff("admin", "consents.write", bob, "marketing", "email", reason="granted",
                        detail={"method": "api", "receipt_id": body["receipt_id"]}))
    rid, st, body = w.call("PUT", "/v1/contacts/{id}/consents/{name}",
                           f"/v1/contacts/{alice}/consents/marketing", token="auditor",
                           json_body={"channel": "email", "status": "withdrawn", "source": "walk"})
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "consents.write", alice, "marketing"))  # the purpose in the URL

    # -- consent receipts and data-subject requests: the entries name the
    # contact, the receipt or request and the states, never a reason --
    rid, st, body = w.call("GET", "/v1/contacts/{id}/receipts/{id}",
                           f"/v1/contacts/{alice}/receipts/{alice_receipt}", token="support")
    assert st == 200 and body["consentReceiptID"] == alice_receipt, body
    w.expect(rid, staff("support", "receipts.read", alice, reason="allowed",
                        detail={"receipt_id": alice_receipt}))
    rid, st, body = w.call("POST", "/v1/requests", "/v1/requests", token="support",
                           json_body={"contact_id": alice, "kind": "objection", "jurisdiction": "ccpa"})
    assert st == 201, body
    req_id = body["id"]
    w.expect(rid, staff("support", "requests.create", alice, reason="received",
                        detail={"request_id": req_id, "kind": "objection", "jurisdiction": "ccpa",
                                "origin": "staff"}))
    rid, st, body = w.call("POST", "/v1/requests/{id}/transitions", f"/v1/requests/{req_id}/transitions",
                           token="support", json_body={"to": "denied", "reason": "walk: not an objection"})
    assert st == 200 and body["state"] == "denied", body
    w.expect(rid, staff("support", "requests.transition", alice, reason="denied",
                        detail={"request_id": req_id, "kind": "objection", "from": "received",
                                "to": "denied"}))
    rid, st, body = w.call("GET", "/v1/requests/{id}", f"/v1/requests/{req_id}", token="auditor")
    assert st == 200 and body["steps"][0]["reason"] == "walk: not an objection", body
    w.expect(rid, staff("auditor", "requests.read", alice, reason="allowed", fields="reason",
                        detail={"request_id": req_id}))
    rid, st, body = w.call("GET", "/v1/requests", "/v1/requests", token="auditor")
    assert st == 200, body
    w.expect(rid, staff("auditor", "requests.list", reason="allowed", detail={"count": 1}))
    rid, st, body = w.call("GET", "/v1/requests", "/v1/requests", token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "requests.list"))

    rid, st, body = w.call("GET", "/v1/contacts/{id}/consents", f"/v1/contacts/{alice}/consents",
                           token="admin")
    assert st == 200, body
    w.expect(rid, staff("admin", "consents.read", alice, reason="allowed", fields="evidence"))
    rid, st, body = w.call("GET", "/v1/contacts/{id}/consents", f"/v1/contacts/{alice}/consents",
                           token="auditor")
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "consents.read", alice))
    # A lookup for marketing, now that Alice said yes: marketing's fields only.
    rid, st, body = w.call("GET", "/v1/contacts", f"/v1/contacts?email={q}&purpose=marketing",
                           token="marketing")
    assert st == 200, body
    w.expect(rid, staff("marketing", "contacts.lookup", alice, "marketing", reason="granted",
                        fields="name,email"))

    rid, st, body = w.call("POST", "/v1/consent/check", "/v1/consent/check", token="marketing",
                           json_body={"email": ALICE["email"], "purpose": "marketing", "channel": "email"})
    assert st == 200 and body["allowed"] is True, body
    w.expect(rid, staff("marketing", "consent.check", alice, "marketing", "email", reason="granted"))
    rid, st, body = w.call("POST", "/v1/consent/check", "/v1/consent/check", token="marketing",
                           json_body={"email": "walk.zebediah@example.org", "purpose": "marketing",
                                      "channel": "email"})
    assert st == 200 and body["allowed"] is False, body
    w.expect(rid, staff("marketing", "consent.check", "", "marketing", "email", decision="deny",
                        reason=body["reason"]))
    rid, st, body = w.call("POST", "/v1/consent/check", "/v1/consent/check", token="auditor",
                           json_body={"contact_id": alice, "purpose": "marketing", "channel": "email"})
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "consent.check", "", "marketing"))

    # -- suppressions --
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions", token="marketing",
                           json_body={"email": SUPPRESSED[0], "scope": "purpose", "scope_value": "marketing",
                                      "reason": "unsubscribe", "source": "walk-footer"})
    assert st == 201 and body["added"] is True, body
    e = w.expect(rid, staff("marketing", "suppressions.write", "", "marketing", reason="unsubscribe",
                            detail=lambda d: set(d) == {"subject_hash", "kind", "scope", "source"}
                            and HEX16.match(d["subject_hash"]) and d["kind"] == "email"
                            and d["scope"] == "purpose" and d["source"] == "walk-footer"))
    fay_hash = json.loads(e[0]["detail"])["subject_hash"]
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions", token="marketing",
                           json_body={"email": SUPPRESSED[1], "scope": "channel", "scope_value": "sms",
                                      "reason": "complaint"})
    assert st == 201, body
    w.expect(rid, staff("marketing", "suppressions.write", "", "", "sms", reason="complaint",
                        detail=lambda d: d["scope"] == "channel" and d["source"] == "api"))
    nd = "".join(json.dumps({"email": a, "reason": "unsubscribe"}) + "\n" for a in SUPPRESSED[1:])
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions", token="marketing", body=nd,
                           content_type="application/x-ndjson")
    assert st == 200 and body["total"] == 2 and body["added"] == 2, body
    w.expect(rid, staff("marketing", "suppressions.import", reason="imported",
                        detail={"batch": 1, "entries": 2}),
             staff("marketing", "suppressions.write", reason="imported",
                   detail={"total": 2, "added": 2, "already": 0, "invalid": 0, "batches": 1}))
    csv_body = f"email,reason\r\n{SUPPRESSED[0]},bounce\r\nnot-an-address,bounce\r\n"
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions", token="admin", body=csv_body,
                           content_type="text/csv; header=present")
    assert st == 200 and body["total"] == 2 and body["invalid"] == 1, body
    w.expect(rid, staff("admin", "suppressions.import", reason="imported",
                        detail={"batch": 1, "entries": 1}),
             staff("admin", "suppressions.write", reason="imported",
                   detail={"total": 2, "added": body["added"], "already": body["already"],
                           "invalid": 1, "batches": 1}))
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions", token="support",
                           json_body={"email": SUPPRESSED[0]})
    assert_problem(st, body, 403)
    w.expect(rid, denied("support", "suppressions.write"))
    rid, st, body = w.call("POST", "/v1/suppressions", "/v1/suppressions",
                           body=f"{SUPPRESSED[0]}\n", content_type="text/csv")
    assert_problem(st, body, 401)
    w.expect(rid, dict(action="auth.failure", decision="deny", reason="missing_token",
                       detail={"route": "POST /v1/suppressions"}))

    qf = urllib.parse.quote(SUPPRESSED[0])
    rid, st, body = w.call("GET", "/v1/suppressions", f"/v1/suppressions?email={qf}", token="marketing")
    assert st == 200 and body["suppressed"] is True, body
    w.expect(rid, staff("marketing", "suppressions.read", reason="suppressed",
                        detail={"subject_hash": fay_hash}))
    rid, st, body = w.call("GET", "/v1/suppressions", "/v1/suppressions?email=walk.zebediah%40example.org",
                           token="marketing")
    assert st == 200 and body["suppressed"] is False, body
    w.expect(rid, staff("marketing", "suppressions.read", reason="not_suppressed",
                        detail=lambda d: list(d) == ["subject_hash"] and d["subject_hash"] != fay_hash))
    rid, st, body = w.call("GET", "/v1/suppressions", f"/v1/suppressions?email={qf}", token="support")
    assert_problem(st, body, 403)
    w.expect(rid, denied("support", "suppressions.read"))

    rid, st, body = w.call("DELETE", "/v1/suppressions", f"/v1/suppressions?email={qf}", token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "suppressions.delete"))
    rid, st, body = w.call("DELETE", "/v1/suppressions",
                           f"/v1/suppressions?email={qf}&scope=purpose&scope_value=marketing", token="admin")
    assert st == 200 and body["lifted"] == 1, body
    w.expect(rid, staff("admin", "suppressions.delete", reason="lifted",
                        detail={"subject_hash": fay_hash, "scope": "purpose", "scope_value": "marketing"}))
    rid, st, body = w.call("DELETE", "/v1/suppressions",
                           f"/v1/suppressions?email={qf}&scope=purpose&scope_value=marketing", token="admin")
    assert_problem(st, body, 404)
    w.expect(rid, staff("admin", "suppressions.delete", decision="deny", reason="not_found",
                        detail={"subject_hash": fay_hash, "scope": "purpose", "scope_value": "marketing"}))

    # -- outreach filter and release lookup --
    listed = [alice, ALICE["email"], BOB["email"], SUPPRESSED[1], "walk.zebediah@example.org", "no address"]
    list_body = json.dumps(listed)
    rid, st, hdrs, data = w.send("POST", "/v1/outreach/filter",
                                 "/v1/outreach/filter?purpose=marketing&channel=email", token="marketing",
                                 body=list_body, content_type="application/json")
    assert st == 200, data
    lines = [json.loads(x) for x in data.decode().splitlines()]
    summary = lines[-1]["summary"]
    release = hdrs["x-release-id"]
    assert summary["release_id"] == release and summary["request_id"] == rid, summary

    def filter_detail(d):
        want = {"total": 6, "allowed": summary["allowed"], "denied": summary["denied"],
                "duplicates": 0, "invalid": 1, "errors": 0, "format": "json",
                "list_hmac": summary["list_hmac"], "release_id": release,
                "released": summary["allowed"], "same_person": summary["same_person"],
                "held_by_cap": 0}
        want.update({f"reason_{k}": v for k, v in summary["reasons"].items()
                     if k not in ("invalid", "error")})
        return d == want
    w.expect(rid, staff("marketing", "outreach.filter", "", "marketing", "email", reason="filtered",
                        detail=filter_detail))
    # Alice by id and Alice by address are one person: allowed once, flagged once.
    assert summary["allowed"] == 2 and summary["duplicates"] == 0 and summary["same_person"] == 1, summary
    assert summary["list_hmac"] != hashlib.sha256(list_body.encode()).hexdigest(), summary
    rid, st, body = w.call("POST", "/v1/outreach/filter", "/v1/outreach/filter?purpose=marketing&channel=email",
                           token="support", body=list_body, content_type="application/json")
    assert_problem(st, body, 403)
    w.expect(rid, denied("support", "outreach.filter", "", "marketing"))

    rpath = f"/v1/outreach/releases/{release}/contacts/{alice}"
    rid, st, body = w.call("GET", "/v1/outreach/releases/{id}/contacts/{id}", rpath, token="auditor")
    # released_total counts released people: Alice once, however she was named.
    assert st == 200 and body["released"] is True and body["released_total"] == 2, body
    w.expect(rid, staff("auditor", "outreach.release.read", alice, reason="released",
                        detail={"release_id": release}))
    rid, st, body = w.call("GET", "/v1/outreach/releases/{id}/contacts/{id}",
                           f"/v1/outreach/releases/{release}/contacts/AAAAAAAAAAAAAAAAAAAAAA", token="admin")
    assert st == 200 and body["released"] is False, body
    w.expect(rid, staff("admin", "outreach.release.read", "AAAAAAAAAAAAAAAAAAAAAA", reason="not_released",
                        detail={"release_id": release}))
    rid, st, body = w.call("GET", "/v1/outreach/releases/{id}/contacts/{id}", rpath, token="marketing")
    assert_problem(st, body, 403)
    # A refusal is audited under the action that was attempted (the route's).
    w.expect(rid, denied("marketing", "outreach.release.read", alice))
    rid, st, body = w.call("GET", "/v1/outreach/releases/{id}", f"/v1/outreach/releases/{release}",
                           token="auditor")
    assert st == 200 and body["released"] == 2 and body["actor"] == "marketing-1", body
    w.expect(rid, staff("auditor", "outreach.release.summary", reason="read", detail={"release_id": release}))
    rid, st, body = w.call("GET", "/v1/outreach/releases/{id}", "/v1/outreach/releases/AAAAAAAAAAAAAAAAAAAAAA",
                           token="auditor")
    assert_problem(st, body, 404)
    w.expect(rid, staff("auditor", "outreach.release.summary", decision="deny", reason="not_found",
                        detail={"release_id": "AAAAAAAAAAAAAAAAAAAAAA"}))
    rid, st, body = w.call("GET", "/v1/outreach/contacts/{id}/releases", f"/v1/outreach/contacts/{alice}/releases",
                           token="auditor")
    assert st == 200 and [r["release_id"] for r in body["releases"]] == [release], body
    w.expect(rid, staff("auditor", "outreach.contact.releases", alice, reason="read", detail={"releases": 1}))

    # -- contacts import --
    nd = "".join(json.dumps(c) + "\n" for c in IMPORTED) + "{broken\n"
    rid, st, hdrs, data = w.send("POST", "/v1/contacts/import", "/v1/contacts/import", token="admin",
                                 body=nd, content_type="application/x-ndjson")
    assert st == 200, data
    res = [json.loads(x) for x in data.decode().splitlines()]
    assert [r.get("status") for r in res[:-1]] == ["created", "created", "invalid"], res
    w.expect(rid, staff("admin", "contacts.import", reason="imported",
                        detail={"batch": 1, "created": 2, "duplicates": 0, "lines": 3}),
             staff("admin", "contacts.import", reason="imported",
                   detail={"lines": 3, "created": 2, "duplicates": 0, "invalid": 1, "errors": 0,
                           "batches": 1}))
    rid, st, body = w.call("POST", "/v1/contacts/import", "/v1/contacts/import", token="marketing",
                           body=nd, content_type="application/x-ndjson")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "contacts.import"))

    # -- preference links (staff) --
    # A manage link (grant, download, erase) can only come from a role that may
    # do all of that itself; marketing's and support's links opt out only.
    rid, st, link = w.call("POST", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                           token="admin", json_body={"ttl_days": 30, "capability": "manage"})
    assert st == 202 and "url" not in link, link  # mailed to Bob, never returned
    tok = srv.mailed_token(link["link_id"])
    w.expect(rid, staff("admin", "links.create", bob, reason="created",
                        detail={"link_id": link["link_id"], "scope": "all", "ttl_days": 30,
                                "capability": "manage", "delivery": "mail"}))
    # Every customer entry names the link used and who minted it.
    via = {"link_id": link["link_id"], "link_created_by": "admin-1", "link_capability": "manage"}
    assert tok not in repr(srv.audit_rows())
    rid, st, link2 = w.call("POST", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                            token="support", json_body={"scope": "service"})
    assert st == 201, link2
    w.expect(rid, staff("support", "links.create", bob, "service", reason="created",
                        detail={"link_id": link2["link_id"], "scope": "service", "ttl_days": 90,
                                "capability": "optout"}))
    # A link reaches only its creator's purposes: support may not mint one for marketing.
    rid, st, body = w.call("POST", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                           token="support", json_body={"scope": "marketing"})
    assert_problem(st, body, 403)
    w.expect(rid, staff("support", "links.create", bob, "marketing", decision="deny", reason="role_denied",
                        detail={"capability": "optout"}))
    rid, st, body = w.call("POST", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                           token="auditor")
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "links.create", bob))

    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link/{token}",
                           f"/v1/contacts/{bob}/preference-link/{link2['link_id']}", token="auditor")
    assert_problem(st, body, 403)
    # A refusal is audited under the action that was attempted (the route's).
    w.expect(rid, denied("auditor", "links.revoke", bob))
    # A role ends only links it could have minted: not admin's manage link.
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link/{token}",
                           f"/v1/contacts/{bob}/preference-link/{link['link_id']}", token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, staff("marketing", "links.revoke", bob, decision="deny", reason="role_denied",
                        detail={"link_id": link["link_id"]}))
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link/{token}",
                           f"/v1/contacts/{bob}/preference-link/{link2['link_id']}", token="admin")
    assert st == 200 and body["link_id"] == link2["link_id"], body
    w.expect(rid, staff("admin", "links.revoke", bob, reason="revoked", detail={"link_id": link2["link_id"]}))
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link/{token}",
                           f"/v1/contacts/{bob}/preference-link/{link2['link_id']}", token="admin")
    assert_problem(st, body, 404)
    w.expect(rid, staff("admin", "links.revoke", bob, decision="deny", reason="unknown_link",
                        detail={"link_id": link2["link_id"]}))

    # -- the customer pages --
    rid, st, hdrs, data = w.send("GET", "/p/{token}", f"/p/{tok}", headers={"User-Agent": USER_AGENT})
    assert st == 200, data[:300]
    html = data.decode()
    w.expect(rid, customer("customer.view", bob, reason="link_valid", detail=dict(via, gpc=False)))
    form = {"csrf": csrf_of(html), "action": "set", "purpose": "marketing", "channel": "sms",
            "status": "granted"}
    rid, st, hdrs, data = w.send("POST", "/p/{token}", f"/p/{tok}", body=urllib.parse.urlencode(form),
                                 content_type=FORM, headers={"User-Agent": USER_AGENT})
    assert st == 303 and "done=saved" in hdrs["location"], (st, hdrs)
    w.expect(rid, customer("customer.consent", bob, "marketing", "sms", reason="granted",
                           detail=lambda d: set(d) == {"receipt_id", "method"} | set(via)
                           and B64ID.match(d["receipt_id"]) and d["method"] == "preference_centre"
                           and d["link_id"] == link["link_id"]))
    # The same CSRF value again: refused, audited, nothing changed.
    rid, st, _, _ = w.send("POST", "/p/{token}", f"/p/{tok}", body=urllib.parse.urlencode(form),
                           content_type=FORM)
    assert st == 403, st
    w.expect(rid, customer("customer.form", bob, decision="deny", reason="csrf_replayed", detail=via))
    bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    rid, st, _, _ = w.send("GET", "/p/{token}", f"/p/{bad}")
    assert st == 403, st
    w.expect(rid, customer("customer.link", decision="deny", reason="invalid_link",
                           detail=lambda d: d["route"] == "GET /p/{token}" and d["why"] in ("forged", "malformed")))
    rid, st, _, _ = w.send("POST", "/p/{token}", "/p/not-a-token", body="action=withdraw_all&csrf=x",
                           content_type=FORM)
    assert st == 403, st
    w.expect(rid, customer("customer.link", decision="deny", reason="invalid_link",
                           detail={"route": "POST /p/{token}", "why": "malformed"}))
    # A double opt-in confirmation link (the walk's policy asks for none, so
    # a forged one: test_optin.py walks the real thing) changes nothing.
    tables = data_tables(srv)
    rid, st, _, _ = w.send("GET", "/p/confirm/{token}", f"/p/confirm/{bad}")
    assert st == 403, st
    w.expect(rid, customer("customer.confirm_view", decision="deny", reason="invalid"))
    rid, st, _, _ = w.send("POST", "/p/confirm/{token}", f"/p/confirm/{bad}", body="action=confirm",
                           content_type=FORM)
    assert st == 403, st
    w.expect(rid, customer("customer.confirm", decision="deny", reason="invalid"))
    assert data_tables(srv) == tables

    # GET on the unsubscribe URL changes nothing; it audits only the view.
    tables = data_tables(srv)
    rid, st, _, data = w.send("GET", "/v1/unsubscribe/{token}", f"/v1/unsubscribe/{tok}",
                              headers={"Sec-GPC": "1"})
    assert st == 200, data[:300]
    w.expect(rid, customer("customer.unsubscribe_view", bob, reason="confirmation_shown", detail=via))
    assert data_tables(srv) == tables, "GET /v1/unsubscribe/{token} changed stored data"
    rid, st, _, _ = w.send("GET", "/v1/unsubscribe/{token}", f"/v1/unsubscribe/{bad}")
    assert st == 403, st
    w.expect(rid, customer("customer.link", decision="deny", reason="invalid_link",
                           detail=lambda d: d["route"] == "GET /v1/unsubscribe/{token}"))
    assert data_tables(srv) == tables

    # The public "ask for a link" page: the form is not audited; a request
    # is, with the address as a keyed hash, and the same answer either way.
    rid, st, _, _ = w.send("GET", "/p/request", "/p/request")
    assert st == 200, st
    w.expect_none(rid)
    rid, st, _, known = w.send("POST", "/p/request", "/p/request", body="email=" + BOB["email"],
                               content_type="application/x-www-form-urlencoded")
    assert st == 200, known[:300]
    w.expect(rid, customer("customer.link_request", bob, reason="mailed",
                           detail=lambda d: d["address"].startswith("h:") and d["capability"] == "manage"
                           and set(d) == {"address", "link_id", "capability"}))
    rid, st, _, unknown = w.send("POST", "/p/request", "/p/request", body="email=walk.nobody@example.net",
                                 content_type="application/x-www-form-urlencoded")
    assert (st, unknown) == (200, known)
    w.expect(rid, customer("customer.link_request", reason="no_match",
                           detail=lambda d: set(d) == {"address"} and d["address"].startswith("h:")))
    tables = data_tables(srv)
    rid, st, _, _ = w.send("POST", "/v1/unsubscribe/{token}", f"/v1/unsubscribe/{tok}",
                           body="List-Unsubscribe=Maybe", content_type=FORM)
    assert st == 400, st
    w.expect(rid, customer("customer.unsubscribe", bob, decision="deny", reason="not_one_click", detail=via))
    assert data_tables(srv) == tables
    rid, st, _, _ = w.send("POST", "/v1/unsubscribe/{token}", f"/v1/unsubscribe/{tok}",
                           body="List-Unsubscribe=One-Click", content_type=FORM)
    assert st == 200, st
    w.expect(rid, customer("customer.unsubscribe", bob, reason="unsubscribed",
                           detail=lambda d: d["link_id"] == link["link_id"] and d["gpc"] is False
                           and d["consents_changed"] == 2 and d["suppressions_added"] >= 1))
    assert data_tables(srv) != tables

    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                           token="auditor")
    assert_problem(st, body, 403)
    w.expect(rid, denied("auditor", "links.revoke", bob))
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}/preference-link", f"/v1/contacts/{bob}/preference-link",
                           token="admin")
    assert st == 200 and body["link_id"] == "all", body
    # Bob's staff-made manage link and the one he asked for on /p/request.
    w.expect(rid, staff("admin", "links.revoke", bob, reason="revoked", detail={"link_id": "all", "revoked": 2}))
    rid, st, _, _ = w.send("POST", "/v1/unsubscribe/{token}", f"/v1/unsubscribe/{tok}",
                           body="List-Unsubscribe=One-Click", content_type=FORM)
    assert st == 403, st
    w.expect(rid, customer("customer.link", decision="deny", reason="invalid_link",
                           detail=dict(via, route="POST /v1/unsubscribe/{token}", why="revoked")))

    # -- erasure --
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}", f"/v1/contacts/{bob}", token="support")
    assert_problem(st, body, 403)
    w.expect(rid, denied("support", "contacts.erase", bob))
    rid, st, body = w.call("DELETE", "/v1/contacts/{id}", f"/v1/contacts/{bob}", token="admin")
    assert st == 200, body
    w.expect(rid, staff("admin", "contacts.erase", bob, reason="erased"))

    # -- the auditor API --
    rid, st, body = w.call("GET", "/v1/audit", f"/v1/audit?contact={bob}&limit=3", token="auditor")
    assert st == 200 and len(body["entries"]) == 3, body
    w.expect(rid, staff("auditor", "audit.read", bob, reason="allowed",
                        detail={"resource": "entries", "contact": bob, "limit": 3, "count": 3}))
    rid, st, body = w.call("GET", "/v1/audit", "/v1/audit", token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "audit.read"))
    rid, st, hdrs, data = w.send("GET", "/v1/audit/export", "/v1/audit/export?format=ndjson", token="admin")
    assert st == 200 and hdrs["content-type"] == "application/x-ndjson", hdrs
    last = json.loads(data.decode().splitlines()[-1])
    assert last["request_id"] == rid and last["action"] == "audit.export", last
    w.expect(rid, staff("admin", "audit.export", reason="allowed",
                        detail={"resource": "entries", "format": "ndjson"}))
    rid, st, body = w.call("GET", "/v1/audit/export", "/v1/audit/export", token="support")
    assert_problem(st, body, 403)
    w.expect(rid, denied("support", "audit.export"))
    rid, st, body = w.call("GET", "/v1/audit/verify", "/v1/audit/verify", token="auditor")
    assert st == 200 and body["ok"] is True, body
    w.expect(rid, staff("auditor", "audit.verify", reason="intact",
                        detail={"ok": True, "entries": body["entries"], "first_bad_seq": 0}))
    rid, st, body = w.call("GET", "/v1/audit/verify", "/v1/audit/verify", token="marketing")
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "audit.verify"))
    rid, st, body = w.call("GET", "/v1/audit/checkpoints/latest", "/v1/audit/checkpoints/latest",
                           token="auditor")
    if st == 200:
        w.expect(rid, staff("auditor", "audit.read", reason="allowed", detail={"resource": "checkpoint"}))
    else:
        assert_problem(st, body, 404)
        w.expect(rid, staff("auditor", "audit.read", decision="deny", reason="no_checkpoint",
                            detail={"resource": "checkpoint"}))
    rid, st, body = w.call("GET", "/v1/audit/checkpoints/latest", "/v1/audit/checkpoints/latest",
                           token="cd_walk-no-such-token")
    assert_problem(st, body, 401)
    w.expect(rid, dict(action="auth.failure", decision="deny", reason="unknown_token",
                       detail={"route": "GET /v1/audit/checkpoints/latest"}))

    # -- the auditor's console: the session cookie is the credential --
    rid, st, hdrs, data = w.send("GET", "/console/", "/console/", headers={"Accept": "text/html"})
    assert st == 200 and b'name="token"' in data, st
    w.expect_none(rid)
    login = hdrs["set-cookie"].split(";")[0]
    lcsrf = csrf_of(data.decode())
    form = {"Cookie": login}

    def login_as(token):
        return w.send("POST", "/console/login", "/console/login", content_type=FORM, headers=form,
                      body=urllib.parse.urlencode({"csrf": lcsrf, "token": token}))
    rid, st, _, _ = login_as(srv.tokens["marketing"])
    assert st == 403, st
    w.expect(rid, staff("marketing", "console.login", decision="deny", reason="role_denied"))
    rid, st, _, _ = login_as("cd_walk-not-a-console-token")
    assert st == 401, st
    w.expect(rid, dict(action="auth.failure", decision="deny", reason="unknown_token",
                       detail={"route": "POST /console/login"}))
    rid, st, hdrs, _ = login_as(srv.tokens["auditor"])
    assert st == 303 and hdrs["set-cookie"].startswith("consentd_console="), hdrs
    w.expect(rid, staff("auditor", "console.login", reason="signed_in"))
    sess = {"Cookie": hdrs["set-cookie"].split(";")[0]}
    rid, st, _, _ = w.send("GET", "/console/console.css", "/console/console.css")
    assert st == 200
    w.expect_none(rid)
    rid, st, _, data = w.send("GET", "/console/", "/console/", headers=sess)
    assert st == 200, st
    scsrf = csrf_of(data.decode())
    w.expect(rid, staff("auditor", "audit.read", reason="allowed", detail={"console": "health"}))
    rid, st, _, _ = w.send("GET", "/console/search", f"/console/search?contact={alice}", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.read", alice, reason="allowed",
                        detail=lambda d: d["console"] == "search" and d["contact"] == alice and d["count"] > 0))
    rid, st, hdrs, _ = w.send("POST", "/console/search", "/console/search", content_type=FORM, headers=sess,
                              body=urllib.parse.urlencode({"csrf": scsrf, "email": ALICE["email"]}))
    assert st == 303 and hdrs["location"] == f"/console/search?contact={alice}", hdrs
    w.expect(rid, staff("auditor", "audit.read", alice, reason="allowed",
                        detail={"console": "lookup", "by": "email", "found": 1}))
    rid, st, _, _ = w.send("GET", "/console/entries/{token}", "/console/entries/1", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.read", reason="allowed", detail={"console": "entry", "seq": 1}))
    rid, st, _, _ = w.send("GET", "/console/people/{id}", f"/console/people/{alice}", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.read", alice, reason="allowed", detail={"console": "report"}))
    rid, st, _, _ = w.send("GET", "/console/campaigns", "/console/campaigns", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.read", reason="allowed", detail={"console": "campaigns"}))
    rid, st, _, _ = w.send("GET", "/console/export", "/console/export?format=csv", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.export", reason="allowed", detail={"console": "export", "format": "csv"}))
    rid, st, _, _ = w.send("GET", "/console/evidence", "/console/evidence", headers=sess)
    assert st == 200
    w.expect(rid, staff("auditor", "audit.export", reason="allowed",
                        detail=lambda d: d["console"] == "evidence" and d["size"] > 0))
    rid, st, hdrs, _ = w.send("POST", "/console/logout", "/console/logout", content_type=FORM, headers=sess,
                              body=urllib.parse.urlencode({"csrf": scsrf}))
    assert st == 303, st
    w.expect(rid, staff("auditor", "console.logout", reason="signed_out"))
    rid, st, _, _ = w.send("GET", "/console/search", "/console/search", headers=sess)
    assert st == 401, st
    w.expect_none(rid)

    # -- provider events: this server configures no provider, so the route
    # is 404 and writes nothing; test_events.py walks the configured ones
    # (events.receive, events.auth_failure) --
    rid, st, _, _ = w.send("POST", "/v1/events/{name}", "/v1/events/postmark", content_type="application/json",
                           body=json.dumps({"RecordType": "Bounce", "Email": SUPPRESSED[0]}))
    assert st == 404, st
    w.expect_none(rid)

    # -- outbound webhooks (admin): the entries name the endpoint, never its
    # URL or secret; test_webhooks.py walks the deliveries --
    hook = {"url": "https://hooks.example.org/walk", "events": ["suppression.lifted"], "role": "marketing",
            "description": "walk"}
    rid, st, body = w.call("POST", "/v1/webhooks", "/v1/webhooks", token="admin", json_body=hook)
    assert st == 201 and body["secret"].startswith("whsec_"), body
    wid, secret = body["id"], body["secret"]
    w.expect(rid, staff("admin", "webhooks.create", reason="created",
                        detail={"endpoint_id": wid, "events": "suppression.lifted", "role": "marketing"}))
    rid, st, body = w.call("POST", "/v1/webhooks", "/v1/webhooks", token="marketing", json_body=hook)
    assert_problem(st, body, 403)
    w.expect(rid, denied("marketing", "webhooks.create"))
    rid, st, body = w.call("POST", "/v1/webhooks", "/v1/webhooks", token="admin",
                           json_body={**hook, "events": ["no.such"]})
    assert_problem(st, body, 400)
    w.expect_none(rid)
    rid, st, body = w.call("GET", "/v1/webhooks", "/v1/webhooks", token="admin")
    assert st == 200 and [h["id"] for h in body["webhooks"]] == [wid], body
    w.expect(rid, staff("admin", "webhooks.read", reason="read"))
    rid, st, body = w.call("GET", "/v1/webhooks/{id}", f"/v1/webhooks/{wid}", token="admin")
    assert st == 200 and "secret" not in body, body
    w.expect(rid, staff("admin", "webhooks.read", reason="read", detail={"endpoint_id": wid}))
    rid, st, body = w.call("GET", "/v1/webhooks/{id}/deliveries", f"/v1/webhooks/{wid}/deliveries", token="admin")
    assert st == 200 and body["deliveries"] == [], body
    w.expect(rid, staff("admin", "webhooks.deliveries", reason="read", detail={"endpoint_id": wid}))
    rid, st, body = w.call("POST", "/v1/webhooks/{id}/deliveries/{token}/retry",
                           f"/v1/webhooks/{wid}/deliveries/msg_none/retry", token="admin")
    assert_problem(st, body, 404)
    w.expect(rid, staff("admin", "webhooks.retry", decision="deny", reason="not_found",
                        detail={"endpoint_id": wid, "delivery_id": "msg_none"}))
    rid, st, body = w.call("DELETE", "/v1/webhooks/{id}", f"/v1/webhooks/{wid}", token="admin")
    assert st == 200, body
    w.expect(rid, staff("admin", "webhooks.delete", reason="deleted", detail={"endpoint_id": wid}))
    PERSONAL.extend([secret, secret[6:]])

    # -- every route the code serves was walked --
    missing = sorted(routes - w.seen)
    assert not missing, f"routes the audit walk does not exercise: {missing}"
    assert w.seen <= routes, sorted(w.seen - routes)

    # -- every entry of the walk was asserted; nothing else wrote one --
    walk_rows = [r for r in srv.audit_rows() if r["request_id"].startswith("walk-")]
    assert len(walk_rows) == w.checked, (len(walk_rows), w.checked)

    # -- no personal value anywhere in the audit table --
    srv.stop()
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    # Text columns only: seq, time_us and the hashes are numbers and bytes in
    # which a short digit string (an income) can occur by chance.
    table = "\n".join(repr(r) for r in con.execute(
        "SELECT actor, role, action, record_id, purpose, channel, decision, reason, fields, "
        "request_id, client, detail FROM audit")).lower()
    con.close()
    for v in PERSONAL:
        assert not contains_value(table, v), f"personal value {v!r} is in the audit table"
    assert tok.lower() not in table and tok.split(".")[0].lower() not in table

    # -- and the trail verifies --
    code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
    assert code == 0, (code, out, err)


def test_the_route_list_is_read_from_the_code():
    """The walk's coverage check is only as good as the route list: it must
    find every table, including entries split over two lines."""
    routes = code_routes()
    for r in [("GET", "/healthz"), ("POST", "/v1/contacts/import"), ("GET", "/p/{token}"),
              ("GET", "/v1/outreach/releases/{id}/contacts/{id}"), ("DELETE", "/v1/suppressions"),
              ("GET", "/v1/audit/checkpoints/latest"), ("POST", "/v1/unsubscribe/{token}")]:
        assert r in routes, (r, sorted(routes))
    tables = set()
    for path in glob.glob(os.path.join(ROOT, "service", "h_*.c")):
        tables |= set(re.findall(r"const struct route (\w+)\[\]", open(path).read()))
    router = open(os.path.join(ROOT, "service", "router.c")).read()
    listed = set(re.findall(r"^\t(\w+_routes),$", router, re.M))
    assert listed and listed <= tables, (listed, tables)


if __name__ == "__main__":
    run(globals())
