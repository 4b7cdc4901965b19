"""A marketing campaign over HTTPS: frequency caps across campaigns, the dry
run that releases nothing, one person named twice, and the auditor's view
of a release.

The frequency cap is a policy setting (frequency_cap on a purpose); these
scenarios write it into the server's policy.json before it starts. Time
moves with the test-only clock (CONSENTD_TEST_CLOCK_OFFSET_S, honoured only
with CONSENTD_TEST_FAULTS=1), never by sleeping."""
import csv
import io
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, run  # noqa: E402

FILTER = "/v1/outreach/filter?purpose=marketing&channel=email"
DAY = 86400


def ndjson(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def capped_server(cap=None, offset=None):
    env = {"CONSENTD_TEST_FAULTS": "1"}
    if offset is not None:
        env["CONSENTD_TEST_CLOCK_OFFSET_S"] = str(offset)
    srv = Server(start=False, env=env)
    if cap is not None:
        path = os.path.join(srv.data, "policy.json")
        doc = json.load(open(path))
        doc["purposes"]["marketing"]["frequency_cap"] = cap
        json.dump(doc, open(path, "w"))
    srv.start()
    return srv


def run_filter(srv, entries, path=FILTER, ctype="application/x-ndjson"):
    if ctype == "text/csv":
        body = "entry\n" + "".join(e + "\n" for e in entries)
    else:
        body = "".join(json.dumps(e) + "\n" for e in entries)
    st, out = srv.call("POST", path, token="marketing", body=body, content_type=ctype)
    assert st == 200, (st, out)
    lines = ndjson(out)
    assert "summary" in lines[-1], lines[-1]
    return lines[:-1], lines[-1]["summary"]


def consented(srv, email):
    cid = srv.create_contact(email=email, collected_for=["marketing"])
    srv.set_consent(cid, "marketing", "email", "granted")
    return cid


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def release_summary(srv, release_id):
    st, body = srv.call("GET", f"/v1/outreach/releases/{release_id}", token="auditor")
    assert st == 200, (st, body)
    return body


def test_third_campaign_in_a_week_is_held_back_by_a_cap_of_two():
    for ctype in ("application/x-ndjson", "text/csv"):
        srv = capped_server({"max": 2, "per_days": 7})
        try:
            consented(srv, "ana@example.org")
            first = None
            for i in range(2):
                lines, summary = run_filter(srv, ["ana@example.org"], ctype=ctype)
                assert lines[0]["allowed"] is True, lines
                assert summary["held_by_cap"] == 0, summary
                if first is None:
                    first = release_summary(srv, summary["release_id"])
            lines, summary = run_filter(srv, ["ana@example.org"], ctype=ctype)
            assert lines[0]["allowed"] is False and lines[0]["reason"] == "frequency_cap", lines
            # Reachable again when the older of the two releases leaves the window.
            want = parse_time(first["released_at"]) + timedelta(days=7)
            assert parse_time(lines[0]["reachable_again"]) == want, (lines[0], first)
            assert summary["held_by_cap"] == 1 and summary["reasons"]["frequency_cap"] == 1, summary
            assert summary["allowed"] == 0, summary
            rec = release_summary(srv, summary["release_id"])
            assert rec["held_by_cap"] == 1 and rec["released"] == 0, rec
        finally:
            srv.close()


def test_a_person_is_reachable_again_once_the_window_has_passed():
    srv = capped_server({"max": 2, "per_days": 7})
    try:
        consented(srv, "ben@example.org")
        for _ in range(2):
            run_filter(srv, ["ben@example.org"])
        lines, _ = run_filter(srv, ["ben@example.org"])
        assert lines[0]["reason"] == "frequency_cap", lines
        # Six days later: still held; eight days later: reachable.
        srv.stop()
        srv.env["CONSENTD_TEST_CLOCK_OFFSET_S"] = str(6 * DAY)
        srv.start()
        lines, _ = run_filter(srv, ["ben@example.org"])
        assert lines[0]["reason"] == "frequency_cap", lines
        srv.stop()
        srv.env["CONSENTD_TEST_CLOCK_OFFSET_S"] = str(8 * DAY)
        srv.start()
        lines, _ = run_filter(srv, ["ben@example.org"])
        assert lines[0]["allowed"] is True, lines
    finally:
        srv.close()


def test_the_single_check_about_an_outreach_answers_the_cap_and_a_lookup_does_not():
    srv = capped_server({"max": 1, "per_days": 30})
    try:
        cid = consented(srv, "hil@example.org")
        _, summary = run_filter(srv, [cid])
        first = release_summary(srv, summary["release_id"])
        body = srv.check("marketing", "email", email="hil@example.org", use="outreach")
        assert body["allowed"] is False and body["reason"] == "frequency_cap", body
        want = parse_time(first["released_at"]) + timedelta(days=30)
        assert parse_time(body["reachable_again"]) == want, body
        for who in ({"email": "hil@example.org"}, {"contact_id": cid, "use": "lookup"}):
            body = srv.check("marketing", "email", **who)
            assert body["allowed"] is True and "reachable_again" not in body, body
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing", "channel": "email", "use": "shout"})
        assert_problem(st, body, 400)
    finally:
        srv.close()


def test_the_clock_offset_is_ignored_without_the_test_hooks():
    srv = Server(start=False, env={"CONSENTD_TEST_CLOCK_OFFSET_S": str(400 * DAY)})
    try:
        srv.start()
        consented(srv, "cal@example.org")
        last = srv.audit_rows()[-1]
        drift = abs(last["time_us"] / 1e6 - datetime.now(timezone.utc).timestamp())
        assert drift < 3600, last
        assert "TEST CLOCK" not in srv.stop()
    finally:
        srv.close()


def test_two_campaigns_at_once_never_pass_the_cap_together():
    """The cap is counted again on the writer: a list decided while another
    campaign released the same person is refused whole (409) and releases
    no one, so the count stays exact whatever runs alongside."""
    import http.client
    import ssl
    srv = capped_server({"max": 1, "per_days": 7})
    try:
        cid = consented(srv, "lea@example.org")
        ctx = ssl.create_default_context(cafile=srv.cafile)
        slow = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=30)
        # Entries are decided in blocks of 2048 (LIMIT_FILTER_BLOCK): the
        # 2049th entry makes the first block, lea's, decided before the
        # list ends.
        head = b'"lea@example.org"\n' + b"".join(b'"x%d@example.org"\n' % i for i in range(2048))
        tail = b"\n" * 64
        slow.putrequest("POST", FILTER)
        slow.putheader("Authorization", f"Bearer {srv.tokens['marketing']}")
        slow.putheader("Content-Type", "application/x-ndjson")
        slow.putheader("Content-Length", str(len(head) + len(tail)))
        slow.endheaders()
        slow.send(head)
        # The slow list has decided its entry (allowed); a second campaign
        # now releases the same person and commits first.
        deadline = __import__("time").time() + 10
        while __import__("time").time() < deadline:
            if int(metric(srv, "consentd_filter_entries_total") or 0) >= 1:
                break
            __import__("time").sleep(0.02)
        lines, summary = run_filter(srv, [cid])
        assert lines[0]["allowed"] is True, lines
        slow.send(tail)
        resp = slow.getresponse()
        data = resp.read().decode()
        assert resp.status == 409, (resp.status, data[-2000:])
        assert json.loads(data)["reason"] == "cap_conflict", data
        st, body = srv.call("GET", f"/v1/outreach/contacts/{cid}/releases", token="auditor")
        assert st == 200 and len(body["releases"]) == 1, body
        rows = srv.audit_rows("action = 'outreach.filter'")
        assert [r["reason"] for r in rows] == ["filtered", "cap_conflict"], rows
    finally:
        srv.close()


def metric(srv, name):
    st, text = srv.call("GET", "/metrics", token="admin")
    for line in str(text).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line.rsplit(" ", 1)[1]
    return None


def test_a_dry_run_releases_no_one_and_uses_up_no_allowance():
    srv = capped_server({"max": 2, "per_days": 7})
    try:
        cid = consented(srv, "dee@example.org")
        for _ in range(3):
            st, out = srv.call("POST", FILTER + "&dry_run=true", token="marketing",
                               body='"dee@example.org"\n', content_type="application/x-ndjson")
            assert st == 200, out
            lines = ndjson(out)
            assert lines[0]["allowed"] is True, lines
            assert lines[-1]["summary"]["dry_run"] is True, lines[-1]
            assert lines[-1]["summary"]["release_id"] is None, lines[-1]
        st, body = srv.call("GET", f"/v1/outreach/contacts/{cid}/releases", token="auditor")
        assert st == 200 and body["releases"] == [], body
        rows = srv.audit_rows("action = 'outreach.filter'")
        assert len(rows) == 3 and all(r["reason"] == "dry_run" for r in rows), rows
        assert all("release_id" not in json.loads(r["detail"]) for r in rows), rows
        # The real runs still have the whole allowance.
        for want in (True, True, False):
            lines, _ = run_filter(srv, ["dee@example.org"])
            assert lines[0]["allowed"] is want, lines
        st, out = srv.call("POST", FILTER + "&dry_run=maybe", token="marketing",
                           body='"dee@example.org"\n', content_type="application/x-ndjson")
        assert_problem(st, out, 400)
    finally:
        srv.close()


def test_identifiers_of_one_person_in_different_lists_count_as_one_person():
    srv = capped_server({"max": 2, "per_days": 7})
    try:
        cid = consented(srv, "eve@example.org")
        lines, _ = run_filter(srv, ["eve@example.org"])
        assert lines[0]["allowed"] is True, lines
        lines, _ = run_filter(srv, [cid], ctype="text/csv")
        assert lines[0]["allowed"] is True, lines
        lines, _ = run_filter(srv, ["EVE@Example.org"])
        assert lines[0]["reason"] == "frequency_cap", lines
        lines, _ = run_filter(srv, [cid])
        assert lines[0]["reason"] == "frequency_cap", lines
        st, body = srv.call("GET", f"/v1/outreach/contacts/{cid}/releases", token="auditor")
        assert st == 200 and len(body["releases"]) == 2, body
        assert all(r["purpose"] == "marketing" and r["channel"] == "email" for r in body["releases"]), body
    finally:
        srv.close()


def test_one_person_named_twice_in_a_list_is_allowed_once():
    for ctype in ("application/x-ndjson", "text/csv"):
        srv = capped_server()
        try:
            cid = consented(srv, "fay@example.org")
            lines, summary = run_filter(srv, [cid, "fay@example.org", "FAY@example.org"], ctype=ctype)
            # The exact duplicate (same address, other case) is left out; the
            # same person by another identifier is flagged.
            assert [ln["allowed"] for ln in lines] == [True, False], lines
            assert lines[1]["reason"] == "duplicate_person", lines
            assert summary["allowed"] == 1 and summary["same_person"] == 1, summary
            rec = release_summary(srv, summary["release_id"])
            assert rec["released"] == 1, rec
        finally:
            srv.close()


def test_the_auditor_reads_a_release_and_unknown_ids_are_404():
    srv = capped_server()
    try:
        cid = consented(srv, "gus@example.org")
        _, summary = run_filter(srv, ["gus@example.org", "nobody@example.org"])
        rid = summary["release_id"]
        rec = release_summary(srv, rid)
        for key, want in (("purpose", "marketing"), ("channel", "email"), ("total", 2), ("allowed", 1),
                          ("released", 1), ("actor", "marketing-1"), ("list_hmac", summary["list_hmac"])):
            assert rec[key] == want, (key, rec)
        assert "gus@example.org" not in json.dumps(rec)
        st, body = srv.call("GET", f"/v1/outreach/releases/{rid}/contacts/{cid}", token="auditor")
        assert st == 200 and body["released"] is True, body
        unknown = "AAAAAAAAAAAAAAAAAAAAAA"
        st, body = srv.call("GET", f"/v1/outreach/releases/{unknown}", token="auditor")
        assert_problem(st, body, 404)
        st, body = srv.call("GET", f"/v1/outreach/releases/{unknown}/contacts/{cid}", token="auditor")
        assert_problem(st, body, 404)
        st, body = srv.call("GET", f"/v1/outreach/releases/{rid}", token="marketing")
        assert st == 403, body
    finally:
        srv.close()


def test_an_invalid_frequency_cap_refuses_start_with_a_precise_message():
    for cap, text in (({"max": 0, "per_days": 7}, "$.purposes.marketing.frequency_cap.max"),
                      ({"max": 2}, "per_days"),
                      ({"max": 2, "per_days": 7, "per": 1}, "per"),
                      ({"max": 2, "per_days": 9999}, "$.purposes.marketing.frequency_cap.per_days")):
        srv = Server(start=False)
        try:
            path = os.path.join(srv.data, "policy.json")
            doc = json.load(open(path))
            doc["purposes"]["marketing"]["frequency_cap"] = cap
            json.dump(doc, open(path, "w"))
            code = srv.start(expect_fail=True)
            assert code == 3, (code, srv.output)
            assert text in srv.output, (cap, srv.output)
        finally:
            srv.close()


def one_click(srv, url):
    path = url.split("://", 1)[1].split("/", 1)[1]
    st, _, data = srv.raw("POST", "/" + path, body=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st, data.decode()


def mint(srv, cid, token="marketing", **body):
    st, out = srv.call("POST", f"/v1/contacts/{cid}/preference-link", token=token, json=body)
    assert st == 201, (st, out)
    return out


def test_one_click_through_an_expired_opt_out_link_still_unsubscribes():
    srv = capped_server()
    try:
        cid = consented(srv, "ida@example.org")
        optout = mint(srv, cid, scope="marketing", ttl_days=1)
        # A manage link is mailed, never returned (issue 16): read it from the mail.
        _, manage_tok = srv.manage_link(cid, scope="all", ttl_days=1)
        # Two days later, on the test clock: both links have expired.
        srv.stop()
        srv.env["CONSENTD_TEST_CLOCK_OFFSET_S"] = str(2 * DAY)
        srv.start()
        st, _, _ = srv.raw("GET", "/p/" + optout["url"].rsplit("/", 1)[1])
        assert st == 403  # the page is gone ...
        # ... a staff link of another capability keeps its expiry ...
        st, _ = one_click(srv, f"https://consentd/v1/unsubscribe/{manage_tok}")
        assert st == 403
        assert srv.check("marketing", "email", contact_id=cid)["allowed"] is True
        # ... and the opt-out keeps working.
        st, html = one_click(srv, optout["unsubscribe_url"])
        assert st == 200, html
        body = srv.check("marketing", "email", contact_id=cid)
        assert body["allowed"] is False and body["reason"] in ("withdrawn", "suppressed"), body
        rows = srv.audit_rows("action = 'customer.unsubscribe'")
        assert [r["reason"] for r in rows] == ["unsubscribed"] and rows[0]["record_id"] == cid, rows
    finally:
        srv.close()


def test_one_click_through_a_revoked_opt_out_link_still_unsubscribes():
    srv = capped_server()
    try:
        cid = consented(srv, "jon@example.org")
        link = mint(srv, cid, scope="marketing")
        st, body = srv.call("DELETE", f"/v1/contacts/{cid}/preference-link/{link['link_id']}", token="marketing")
        assert st == 200, body
        st, html = one_click(srv, link["unsubscribe_url"])
        assert st == 200, html
        assert srv.check("marketing", "email", contact_id=cid)["allowed"] is False
        # A forged token is still refused.
        tok = link["unsubscribe_url"].rsplit("/", 1)[1]
        st, _ = one_click(srv, link["unsubscribe_url"].replace(tok, tok[:-2] + ("AA" if tok[-2:] != "AA" else "BA")))
        assert st == 403
    finally:
        srv.close()


def test_one_click_after_erasure_answers_success_and_writes_nothing():
    srv = capped_server()
    try:
        cid = consented(srv, "kim@example.org")
        link = mint(srv, cid, scope="marketing")
        st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
        assert st == 200, body
        import sqlite3
        def counts():
            con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
            out = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("suppression", "consent_event", "consent")]
            con.close()
            return out
        before = counts()
        st, html = one_click(srv, link["unsubscribe_url"])
        assert st == 200, html
        assert counts() == before
        rows = srv.audit_rows("action = 'customer.unsubscribe'")
        assert [r["reason"] for r in rows] == ["already_suppressed"] and rows[0]["record_id"] == cid, rows
        assert srv.check("marketing", "email", email="kim@example.org")["allowed"] is False
    finally:
        srv.close()


def test_the_persons_data_download_lists_the_campaigns_that_reached_them():
    import re
    import urllib.parse
    srv = capped_server()
    try:
        cid = consented(srv, "max@example.org")
        _, first = run_filter(srv, ["max@example.org"])
        run_filter(srv, ["max@example.org"], path=FILTER + "&dry_run=true")  # releases no one
        _, second = run_filter(srv, [cid])
        _, tok = srv.manage_link(cid, scope="all")
        st, _, html = srv.raw("GET", f"/p/{tok}")
        assert st == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
        st, _, data = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(
            {"csrf": csrf, "action": "download"}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200, data
        doc = json.loads(data)
        got = [(c["release_id"], c["purpose"], c["channel"]) for c in doc["campaigns"]]
        assert got == [(second["release_id"], "marketing", "email"),
                       (first["release_id"], "marketing", "email")], doc["campaigns"]
    finally:
        srv.close()


def test_a_purpose_without_channels_is_checked_and_filtered_without_one():
    srv = capped_server()
    try:
        cid = srv.create_contact(email="ned@example.org", collected_for=["marketing", "partner_sharing"])
        srv.set_consent(cid, "partner_sharing", None, "granted")
        other = srv.create_contact(email="ola@example.org", collected_for=["partner_sharing"])
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "partner_sharing"})
        assert st == 200 and body["allowed"] is True and body["channel"] is None, body
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": other, "purpose": "partner_sharing"})
        assert st == 200 and body["allowed"] is False and body["reason"] == "no_consent", body
        # A channel named for it is a clear 422; a purpose with channels still needs one.
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "partner_sharing", "channel": "email"})
        assert_problem(st, body, 422)
        assert body["reason"] == "channel_not_allowed", body
        st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing"})
        assert_problem(st, body, 400)
        for fmt in ("ndjson", "csv"):
            path = "/v1/outreach/filter?purpose=partner_sharing"
            if fmt == "ndjson":
                lines, summary = run_filter(srv, ["ned@example.org", other], path=path)
                got = [(ln["allowed"], ln["reason"]) for ln in lines]
            else:
                rows, summary = filter_csv(srv, ["ned@example.org", other], path=path)
                got = [(r["allowed"] == "true", r["reason"]) for r in rows]
            assert got == [(True, "granted"), (False, "no_consent")], got
        st, out = srv.call("POST", "/v1/outreach/filter?purpose=partner_sharing&channel=email", token="marketing",
                           body='"ned@example.org"\n', content_type="application/x-ndjson")
        assert_problem(st, out, 422)
        assert out["reason"] == "channel_not_allowed", out
        st, out = srv.call("POST", "/v1/outreach/filter?purpose=marketing", token="marketing",
                           body='"ned@example.org"\n', content_type="application/x-ndjson")
        assert_problem(st, out, 400)
    finally:
        srv.close()


def choice_server(cap):
    env = {"CONSENTD_TEST_FAULTS": "1"}
    srv = Server(start=False, env=env)
    path = os.path.join(srv.data, "policy.json")
    doc = json.load(open(path))
    doc["purposes"]["marketing"]["frequency_cap"] = cap
    doc["purposes"]["marketing"]["frequency_choice"] = True
    json.dump(doc, open(path, "w"))
    srv.start()
    return srv


def choose(srv, tok, choice):
    import re
    import urllib.parse
    st, _, html = srv.raw("GET", f"/p/{tok}")
    assert st == 200
    html = html.decode()
    assert 'name="frequency"' in html and "At most one a week" in html, html[-3000:]
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    st, hdrs, data = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(
        {"csrf": csrf, "action": "frequency", "purpose": "marketing", "channel": "email",
         "frequency": choice}).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st, hdrs


def test_a_persons_weekly_choice_holds_back_a_second_mail_the_policy_would_allow():
    srv = choice_server({"max": 5, "per_days": 7})
    try:
        cid = consented(srv, "pia@example.org")
        link = mint(srv, cid, scope="marketing")  # an opt-out link may choose less contact
        tok = link["url"].rsplit("/", 1)[1]
        st, hdrs = choose(srv, tok, "weekly")
        assert st == 303 and "done=saved" in hdrs["location"], (st, hdrs)
        _, first = run_filter(srv, ["pia@example.org"])
        assert first["allowed"] == 1, first
        rec = release_summary(srv, first["release_id"])
        for ctype in ("application/x-ndjson", "text/csv"):
            lines, summary = run_filter(srv, ["pia@example.org"], path=FILTER + "&dry_run=true", ctype=ctype)
            assert lines[0]["reason"] == "frequency_cap", lines
            want = parse_time(rec["released_at"]) + timedelta(days=7)
            assert parse_time(lines[0]["reachable_again"]) == want, lines
        body = srv.check("marketing", "email", contact_id=cid, use="outreach")
        assert body["reason"] == "frequency_cap", body
        rows, _ = filter_csv(srv, ["pia@example.org"], path=FILTER + "&dry_run=true")
        assert rows[0]["reason"] == "frequency_cap" and rows[0]["reachable_again"], rows
        # "Only important messages": no campaign reaches them, no date to wait for.
        assert choose(srv, tok, "important")[0] == 303
        lines, _ = run_filter(srv, ["pia@example.org"], path=FILTER + "&dry_run=true")
        assert lines[0]["reason"] == "frequency_cap" and "reachable_again" not in lines[0], lines
        # Back to "as often as you send": the policy's 5 a week applies again.
        assert choose(srv, tok, "any")[0] == 303
        lines, _ = run_filter(srv, ["pia@example.org"], path=FILTER + "&dry_run=true")
        assert lines[0]["allowed"] is True, lines
        assert choose(srv, tok, "hourly")[0] == 400
        rows = srv.audit_rows("action = 'customer.frequency'")
        assert [r["reason"] for r in rows] == ["weekly", "important", "any"], rows
        assert all(r["purpose"] == "marketing" and r["channel"] == "email" for r in rows), rows
        # The choice is in the person's data download.
        import re
        import urllib.parse
        _, manage = srv.manage_link(cid, scope="all")
        _, _, html = srv.raw("GET", f"/p/{manage}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
        st, _, data = srv.raw("POST", f"/p/{manage}", body=urllib.parse.urlencode(
            {"csrf": csrf, "action": "download"}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        doc = json.loads(data)
        assert [(f["purpose"], f["channel"], f["choice"]) for f in doc["frequency_choices"]] == \
            [("marketing", "email", "any")], doc["frequency_choices"]
    finally:
        srv.close()


def test_the_frequency_choice_is_offered_only_where_the_policy_allows_it():
    srv = capped_server()
    try:
        cid = consented(srv, "quin@example.org")
        tok = mint(srv, cid, scope="marketing")["url"].rsplit("/", 1)[1]
        st, _, html = srv.raw("GET", f"/p/{tok}")
        assert st == 200 and 'name="frequency"' not in html.decode()
        import re
        import urllib.parse
        csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
        st, _, _ = srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(
            {"csrf": csrf, "action": "frequency", "purpose": "marketing", "channel": "email",
             "frequency": "weekly"}).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 400
        assert not srv.audit_rows("action = 'customer.frequency'")
    finally:
        srv.close()


def filter_csv(srv, entries, path=FILTER):
    """Posts NDJSON, asks for CSV back: (rows as dicts, summary from the header)."""
    body = "".join(json.dumps(e) + "\n" for e in entries)
    st, hdrs, data = srv.raw("POST", path, body=body.encode(),
                             headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                                      "Content-Type": "application/x-ndjson", "Accept": "text/csv"})
    assert st == 200, (st, data)
    assert hdrs["content-type"].startswith("text/csv"), hdrs
    text = data.decode()
    assert text.startswith("entry,allowed,reason,contact_id,reachable_again,line,error\r\n"), text[:200]
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return rows, json.loads(hdrs["x-filter-summary"])["summary"]


def import_contacts(srv, n, prefix):
    """n consented contacts through the import: {email: id}."""
    body = "".join(json.dumps({"email": f"{prefix}{i}@example.org", "collected_for": ["marketing"],
                               "consents": [{"purpose": "marketing", "channel": "email",
                                             "status": "granted"}]}) + "\n" for i in range(n))
    st, out = srv.call("POST", "/v1/contacts/import", token="admin", body=body,
                       content_type="application/x-ndjson")
    assert st == 200, out
    ids = {}
    for line in ndjson(out):
        if "summary" in line:
            continue
        assert line.get("status") == "created", line
        ids[f"{prefix}{line['line'] - 1}@example.org"] = line["id"]
    assert len(ids) == n, len(ids)
    return ids


def test_a_mailing_tool_gets_csv_with_only_the_allowed_entries():
    srv = capped_server()
    try:
        ann = consented(srv, "ann@example.org")
        bob = consented(srv, "bob@example.org")
        srv.set_consent(bob, "marketing", "email", "withdrawn")
        entries = ["ann@example.org", "bob@example.org", "=HYPERLINK(\"http://x\")", "nobody@example.org"]
        rows, summary = filter_csv(srv, entries)
        assert [r["allowed"] for r in rows] == ["true", "false", "false", "false"], rows
        assert rows[0]["contact_id"] == ann and rows[1]["contact_id"] == "", rows
        # A formula is defused, and the invalid entry keeps its line and why.
        assert rows[2]["entry"].startswith("'="), rows[2]
        assert rows[2]["reason"] == "invalid" and rows[2]["line"] == "3" and rows[2]["error"], rows[2]
        assert summary["total"] == 4 and summary["allowed"] == 1, summary
        rows, summary = filter_csv(srv, entries, path=FILTER + "&only=allowed")
        assert [(r["entry"], r["allowed"]) for r in rows] == [("ann@example.org", "true")], rows
        assert summary["total"] == 4 and summary["denied"] == 3, summary
        # NDJSON: the same choice, the summary as the last line.
        lines, summary = run_filter(srv, entries, path=FILTER + "&only=allowed")
        assert [ln["entry"] for ln in lines] == ["ann@example.org"], lines
        assert summary["denied"] == 3, summary
        st, out = srv.call("POST", FILTER + "&only=denied", token="marketing", body='"ann@example.org"\n',
                           content_type="application/x-ndjson")
        assert_problem(st, out, 400)
    finally:
        srv.close()


def test_a_list_of_100000_mixed_identifiers_reaches_each_person_once():
    srv = capped_server({"max": 2, "per_days": 7})
    try:
        ids = import_contacts(srv, 2000, "mix")
        rng = random.Random(15)
        emails = list(ids)
        entries = []
        while len(entries) < 100000:
            k = rng.randrange(4)
            e = rng.choice(emails)
            if k == 0:
                entries.append(e)
            elif k == 1:
                entries.append(ids[e])
            elif k == 2:
                entries.append(e.upper())
            else:
                entries.append(f"stranger{rng.randrange(50000)}@example.org")
        people = {ids[e] for e in emails}
        for fmt in ("ndjson", "csv"):
            if fmt == "ndjson":
                lines, summary = run_filter(srv, entries, path=FILTER + "&dry_run=true")
                allowed = [ln for ln in lines if ln["allowed"]]
                flagged = sum(1 for ln in lines if ln["reason"] == "duplicate_person")
            else:
                rows, summary = filter_csv(srv, entries, path=FILTER + "&dry_run=true")
                allowed = [r for r in rows if r["allowed"] == "true"]
                flagged = sum(1 for r in rows if r["reason"] == "duplicate_person")
            # Every named person is allowed exactly once, whichever identifiers named them.
            named = {ids[e.lower()] if "@" in e and e.lower() in ids else e for e in entries} & people
            assert summary["allowed"] == len(allowed) == len(named), (summary, len(named))
            assert summary["same_person"] == flagged > 0, summary
            assert summary["total"] == 100000, summary
        # The real run releases each person once; a second and third count toward the cap.
        _, summary = run_filter(srv, entries)
        rec = release_summary(srv, summary["release_id"])
        assert rec["released"] == summary["allowed"], (rec, summary)
        run_filter(srv, entries[:500])
        lines, summary = run_filter(srv, entries[:500])
        assert summary["allowed"] == 0 and summary["held_by_cap"] > 0, summary
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
