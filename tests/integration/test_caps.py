"""Frequency caps beyond one purpose on one instance (issue 18): several
instances on one PostgreSQL database counting the same people, caps shared
by several purposes, the person's own choice as evidence in the consent
history, and the auditor's view of a person's releases.

Time moves with the test-only clock (CONSENTD_TEST_CLOCK_OFFSET_S, honoured
only with CONSENTD_TEST_FAULTS=1), never by sleeping. The scenarios that
need several instances run only on PostgreSQL (scripts/pgtest.sh sets
CONSENTD_TEST_DATABASE); on SQLite they are SKIP."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, needs_postgresql, pg_admin, psql_rows, run  # noqa: E402

FILTER = "/v1/outreach/filter?purpose=marketing&channel=email"
ENV = {"CONSENTD_TEST_FAULTS": "1"}


def ndjson(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def edit_policy(srv, change):
    path = os.path.join(srv.data, "policy.json")
    doc = json.load(open(path))
    change(doc)
    json.dump(doc, open(path, "w"))


def consented(srv, email, purposes=("marketing",)):
    cid = srv.create_contact(email=email, collected_for=list(purposes))
    for p in purposes:
        srv.set_consent(cid, p, "email", "granted")
    return cid


def filter_raw(srv, entries, path=FILTER, client=None):
    body = "".join(json.dumps(e) + "\n" for e in entries)
    return srv.call("POST", path, token="marketing", body=body, content_type="application/x-ndjson",
                    client=client)


def run_filter(srv, entries, path=FILTER):
    st, out = filter_raw(srv, entries, path)
    assert st == 200, (st, out)
    lines = ndjson(out)
    assert "summary" in lines[-1], lines[-1]
    return lines[:-1], lines[-1]["summary"]


# ---- several instances, one PostgreSQL database ----

def capped_fleet(cap, n=2, isolation=None):
    """n instances on one database with the marketing cap set; isolation
    sets the database's default_transaction_isolation, as an operator may."""
    if not pg_admin():
        needs_postgresql()
    first = Server(start=False, env=ENV)
    edit_policy(first, lambda d: d["purposes"]["marketing"].__setitem__("frequency_cap", cap))
    if isolation is not None:
        name = first.pg.rsplit("/", 1)[1]
        subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", pg_admin(), "-c",
                        f"ALTER DATABASE {name} SET default_transaction_isolation = '{isolation}'"],
                       check=True, capture_output=True, timeout=60)
    servers = [first]
    for i in range(1, n):
        data = os.path.join(first.tmp, f"copy{i}")
        shutil.copytree(first.data, data)
        s = Server(roles=(), start=False, data=data, database=first.pg, env=ENV)
        s.tokens = first.tokens
        servers.append(s)
    for s in servers:
        s.start()
    return servers


def close_all(servers):
    for s in servers:
        s.stop()
    shutil.rmtree(servers[0].tmp, ignore_errors=True)


def releases_per_person(uri):
    rows = psql_rows(uri, "SELECT encode(contact, 'hex') AS c, count(*) AS n FROM release_log "
                          "GROUP BY contact")
    return {r["c"]: r["n"] for r in rows}


def concurrent_filters(servers, people, rounds):
    """Two threads per instance, each filtering every person `rounds`
    times; the answers (status, allowed count) of every request."""
    answers, errors = [], []

    def work(s):
        c = s.new_client()
        for _ in range(rounds):
            st, out = filter_raw(s, people, client=c)
            if st == 200:
                summary = ndjson(out)[-1]["summary"]
                answers.append((st, summary["allowed"]))
            elif st == 409:
                answers.append((st, 0))
            else:
                errors.append((st, out))

    ts = [threading.Thread(target=work, args=(s,)) for s in servers for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not errors, errors[:3]
    return answers


def assert_cap_held_across_instances(servers, people):
    answers = concurrent_filters(servers, people, rounds=8)
    print(f"  {len(answers)} filters: {sum(1 for st, _ in answers if st == 409)} refused 409 cap_conflict",
          flush=True)
    counts = releases_per_person(servers[0].pg)
    assert counts and max(counts.values()) <= 2, counts
    # Every allowed line of a 200 is a release on record, and nothing else is.
    assert sum(a for _, a in answers) == sum(counts.values()), (answers, counts)
    # A later filter through either instance finds everyone at the cap.
    for s in servers:
        lines, summary = run_filter(s, people)
        assert all(not l["allowed"] for l in lines), lines
    return answers


def test_two_instances_filtering_the_same_people_never_pass_a_cap_of_two():
    servers = capped_fleet({"max": 2, "per_days": 7})
    try:
        people = [consented(servers[0], f"mi{i}@example.org") for i in range(12)]
        assert_cap_held_across_instances(servers, people)
    finally:
        close_all(servers)


def test_the_cap_stays_exact_when_the_database_defaults_to_repeatable_read():
    """The writer's recount reads what other instances committed before it
    took the chain lock. Under a database default of REPEATABLE READ its
    snapshot would date from before the lock was granted, and the recount
    would miss the other instance's releases; the writer sets READ
    COMMITTED itself."""
    servers = capped_fleet({"max": 2, "per_days": 7}, isolation="repeatable read")
    try:
        people = [consented(servers[0], f"rr{i}@example.org") for i in range(12)]
        assert_cap_held_across_instances(servers, people)
    finally:
        close_all(servers)


def test_a_list_decided_while_another_instance_released_the_person_is_refused():
    """Deterministic interleaving: instance A has decided its list (the
    person is under the cap), instance B releases the same person to the
    cap and commits, then A's list ends: A's writer counts again, 409."""
    import http.client
    import ssl
    import time
    servers = capped_fleet({"max": 2, "per_days": 7})
    a, b = servers
    try:
        cid = consented(a, "lea@example.org")
        run_filter(a, [cid])  # one release of two
        ctx = ssl.create_default_context(cafile=a.cafile)
        slow = http.client.HTTPSConnection("127.0.0.1", a.port, context=ctx, timeout=30)
        # Entries are decided in blocks of 2048 (LIMIT_FILTER_BLOCK): the
        # 2049th entry has A decide the first block, the person's, before
        # the list ends.
        head = (json.dumps(cid) + "\n").encode() + b"".join(b'"y%d@example.org"\n' % i for i in range(2048))
        tail = b"\n" * 64
        slow.putrequest("POST", FILTER)
        slow.putheader("Authorization", f"Bearer {a.tokens['marketing']}")
        slow.putheader("Content-Type", "application/x-ndjson")
        slow.putheader("Content-Length", str(len(head) + len(tail)))
        slow.endheaders()
        slow.send(head)
        deadline = time.time() + 10
        while time.time() < deadline and metric(a, "consentd_filter_entries_total") < 1 + 2048:
            time.sleep(0.02)
        lines, _ = run_filter(b, [cid])
        assert lines[0]["allowed"] is True, lines
        slow.send(tail)
        resp = slow.getresponse()
        data = resp.read().decode()
        assert resp.status == 409 and json.loads(data)["reason"] == "cap_conflict", (resp.status, data)
        assert list(releases_per_person(a.pg).values()) == [2]
    finally:
        close_all(servers)


# ---- the person's own choice as evidence with the consent ----

def page_form(srv, tok):
    import re
    st, _, html = srv.raw("GET", f"/p/{tok}")
    assert st == 200, st
    html = html.decode()
    return html, re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def post_form(srv, tok, **fields):
    import urllib.parse
    _, csrf = page_form(srv, tok)
    return srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode({"csrf": csrf, **fields}).encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_a_persons_frequency_choice_is_evidence_in_the_consent_history():
    """The person picks "at most one a week" on the preference page: the
    consent history (API, page, data download) shows it as an event with
    its receipt and sealed evidence; the current consent is unchanged."""
    srv = Server(start=False, env=ENV)
    edit_policy(srv, lambda d: d["purposes"]["marketing"].__setitem__("frequency_choice", True))
    srv.start()
    try:
        cid = consented(srv, "liv@example.org")
        st, before = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
        assert st == 200, before
        _, tok = srv.manage_link(cid, scope="all")
        st, hdrs, _ = post_form(srv, tok, action="frequency", purpose="marketing", channel="email",
                                frequency="weekly")
        assert st == 303 and "done=saved" in hdrs["location"], (st, hdrs)
        st, after = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
        assert st == 200, after
        assert after["consents"] == before["consents"], (before, after)  # the state is unchanged
        added = [h for h in after["history"] if h["collection_method"] == "frequency_choice"]
        assert len(added) == 1 and len(after["history"]) == len(before["history"]) + 1, after
        ev = added[0]
        assert (ev["purpose"], ev["channel"], ev["status"]) == ("marketing", "email", "granted"), ev
        assert ev["evidence"]["frequency"] == "weekly" and ev["evidence"]["link_id"], ev
        assert ev["receipt_id"] != before["consents"][0]["receipt_id"], ev
        # The page's history says how often the person chose.
        html, _ = page_form(srv, tok)
        assert "How often: At most one a week" in html, html[-3000:]
        # The data download carries the event and the choice.
        st, _, data = post_form(srv, tok, action="download")
        assert st == 200, st
        doc = json.loads(data)
        assert [h["collection_method"] for h in doc["consent_history"]].count("frequency_choice") == 1, doc
        assert [(f["purpose"], f["channel"], f["choice"]) for f in doc["frequency_choices"]] == \
            [("marketing", "email", "weekly")], doc["frequency_choices"]
        # The audit entry of the choice names the same link, and no address.
        rows = srv.audit_rows("action = 'customer.frequency'")
        assert len(rows) == 1 and ev["evidence"]["link_id"] in rows[0]["detail"], rows
        assert "liv@example.org" not in repr(rows), rows
        # A choice for a channel without a consent is stored, with nothing to add to.
        st, _, _ = post_form(srv, tok, action="frequency", purpose="marketing", channel="sms",
                             frequency="monthly")
        assert st == 303, st
        st, later = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
        assert len(later["history"]) == len(after["history"]), later
    finally:
        srv.close()


# ---- the auditor's view ----

def test_the_access_report_lists_the_persons_recent_releases_and_what_caps_held_back():
    """The console's access report reads the person's releases from the
    release log (time, purpose, channel, release id, newest first), and the
    campaign tables say how many entries the caps held back."""
    import re
    from test_console import signed_in
    srv = Server(start=False, env=ENV)
    edit_policy(srv, lambda d: d["purposes"]["marketing"].__setitem__("frequency_cap",
                                                                    {"max": 1, "per_days": 7}))
    srv.start()
    try:
        cid = consented(srv, "mo@example.org")
        other = consented(srv, "nia@example.org")
        _, first = run_filter(srv, [cid])
        _, second = run_filter(srv, [cid, other])
        assert second["held_by_cap"] == 1 and second["allowed"] == 1, second
        c = signed_in(srv)
        st, _, page = c.req("GET", f"/console/people/{cid}")
        assert st == 200, page
        assert "Recent releases" in page and first["release_id"] in page, page[-4000:]
        section = page[page.index("Recent releases"):]
        rows = re.findall(r"<tr><td>.*?</tr>", section)
        assert len(rows) == 1 and "marketing" in rows[0] and "email" in rows[0], rows
        assert second["release_id"] not in section, section  # the cap held this person back
        st, _, page = c.req("GET", f"/console/people/{other}")
        assert st == 200 and second["release_id"] in page[page.index("Recent releases"):], page[-3000:]
        st, _, page = c.req("GET", "/console/campaigns")
        assert st == 200 and "Held by caps" in page, page
        row = [r for r in re.findall(r"<tr>.*?</tr>", page) if second["release_id"] in r][0]
        cells = re.findall(r"<td>([^<]*)</td>", row)
        # Total 2, allowed 1, denied 1, held by caps 1, released 1.
        assert ["2", "1", "1", "1", "1"] == [x for x in cells if x.isdigit()][-5:], cells
        # The API's release record says the same.
        st, rec = srv.call("GET", f"/v1/outreach/releases/{second['release_id']}", token="auditor")
        assert st == 200 and rec["held_by_cap"] == 1 and rec["released"] == 1, rec
    finally:
        srv.close()


# ---- a cap shared by several purposes ----

SHARED = [{"name": "pressure", "purposes": ["marketing", "offers"], "max": 2, "per_days": 7}]


def with_offers(doc, caps=SHARED):
    """A second marketing-like purpose, "offers", that the marketing role
    may filter, and the shared caps."""
    offers = dict(doc["purposes"]["marketing"])
    offers.pop("frequency_cap", None)
    offers["description"] = "Special offers by email"
    doc["purposes"]["offers"] = offers
    role = doc["roles"]["marketing"]
    role["purposes"].append("offers")
    role["fields"]["offers"] = list(role["fields"]["marketing"])
    if caps is not None:
        doc["frequency_caps"] = caps


def shared_server(caps=SHARED):
    srv = Server(start=False, env=ENV)
    edit_policy(srv, lambda d: with_offers(d, caps))
    srv.start()
    return srv


def test_a_cap_shared_by_two_purposes_holds_a_person_both_reached():
    """Newsletter and offers together at most twice a week: one mail of
    each, and an outreach check for either answers frequency_cap, reachable
    again when the older of the two leaves the window."""
    from datetime import datetime, timedelta, timezone

    def at(s):
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)

    srv = shared_server()
    try:
        cid = consented(srv, "ida@example.org", purposes=("marketing", "offers"))
        body = srv.check("marketing", "email", contact_id=cid, use="outreach")
        assert body["allowed"] is True, body
        _, first = run_filter(srv, [cid])
        body = srv.check("offers", "email", contact_id=cid, use="outreach")
        assert body["allowed"] is True, body  # one of two so far
        _, second = run_filter(srv, [cid], path="/v1/outreach/filter?purpose=offers&channel=email")
        assert first["allowed"] == 1 and second["allowed"] == 1, (first, second)
        st, rec = srv.call("GET", f"/v1/outreach/releases/{first['release_id']}", token="auditor")
        assert st == 200, rec
        for purpose in ("marketing", "offers"):
            body = srv.check(purpose, "email", contact_id=cid, use="outreach")
            assert body["allowed"] is False and body["reason"] == "frequency_cap", body
            assert at(body["reachable_again"]) == at(rec["released_at"]) + timedelta(days=7), body
        # Counted per channel, and a look-up is not an outreach.
        body = srv.check("marketing", "email", contact_id=cid)
        assert body["allowed"] is True and "reachable_again" not in body, body
    finally:
        srv.close()


def test_the_filter_holds_back_a_person_a_shared_cap_has_reached():
    """The outreach filter applies a cap shared by two purposes as the check
    does: after one marketing and one offers mail in the week, a third
    list for either purpose holds the person back (frequency_cap, with the
    reachable-again time), counted as held by a cap."""
    srv = shared_server()
    try:
        cid = consented(srv, "kim@example.org", purposes=("marketing", "offers"))
        other = consented(srv, "lee@example.org", purposes=("marketing", "offers"))
        _, first = run_filter(srv, [cid])
        _, second = run_filter(srv, [cid], path="/v1/outreach/filter?purpose=offers&channel=email")
        assert first["allowed"] == 1 and second["allowed"] == 1, (first, second)
        for path in (FILTER, "/v1/outreach/filter?purpose=offers&channel=email"):
            lines, summary = run_filter(srv, [cid, other], path=path)
            held = [ln for ln in lines if ln["entry"] == cid]
            assert held and held[0]["allowed"] is False and held[0]["reason"] == "frequency_cap", lines
            assert "reachable_again" in held[0], held[0]
            free = [ln for ln in lines if ln["entry"] == other]
            assert free and free[0]["allowed"] is True, lines
            assert summary["held_by_cap"] == 1, summary
    finally:
        srv.close()


def test_without_a_shared_cap_each_purpose_counts_alone():
    srv = shared_server(caps=None)
    try:
        cid = consented(srv, "jon@example.org", purposes=("marketing", "offers"))
        run_filter(srv, [cid])
        run_filter(srv, [cid], path="/v1/outreach/filter?purpose=offers&channel=email")
        body = srv.check("marketing", "email", contact_id=cid, use="outreach")
        assert body["allowed"] is True, body
    finally:
        srv.close()


def test_an_invalid_shared_cap_refuses_start_and_a_reload_keeps_the_old_policy():
    import signal
    import time
    for caps, text in (([{"name": "p", "purposes": ["marketing"], "max": 2, "per_days": 7}],
                        "$.frequency_caps[0].purposes: a shared cap lists at least two purposes"),
                       ([{"name": "p", "purposes": ["marketing", "sales"], "max": 2, "per_days": 7}],
                        "$.frequency_caps[0].purposes[1]: unknown purpose \"sales\""),
                       ([{"name": "p", "purposes": ["marketing", "offers"], "max": 2}],
                        "$.frequency_caps[0]: missing required key \"per_days\"")):
        srv = Server(start=False)
        try:
            edit_policy(srv, lambda d: with_offers(d, caps))
            code = srv.start(expect_fail=True)
            assert code == 3, (code, srv.output)
            assert text in srv.output, (caps, srv.output)
        finally:
            srv.close()
    srv = shared_server()
    try:
        cid = consented(srv, "kai@example.org", purposes=("marketing", "offers"))
        run_filter(srv, [cid])
        run_filter(srv, [cid])
        edit_policy(srv, lambda d: d.__setitem__("frequency_caps", [{"name": "p", "max": 1}]))
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        body = srv.check("offers", "email", contact_id=cid, use="outreach")
        assert body["reason"] == "frequency_cap", body
    finally:
        srv.close()


def metric(srv, name):
    st, text = srv.call("GET", "/metrics", token="admin")
    for line in str(text).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


if __name__ == "__main__":
    run(globals())
