"""Outreach filter over HTTPS: a campaign list in, who may be contacted out.

The correctness matrix runs every case through the filter in all three
input formats AND through the single check, and both must agree with the
expected answer."""
import csv
import io
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, assert_problem, run, sanitized  # noqa: E402

FILTER = "/v1/outreach/filter?purpose=marketing&channel=email"
PAST = {"at": "2020-01-01T00:00:00Z", "expires_at": "2021-01-01T00:00:00Z"}


def ndjson(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def post_list(srv, body, ctype, path=FILTER, token="marketing"):
    st, out = srv.call("POST", path, token=token, body=body, content_type=ctype)
    assert st == 200, (st, out)
    lines = ndjson(out)
    assert "summary" in lines[-1], lines[-1]
    return lines[:-1], lines[-1]["summary"]


def build_matrix(srv):
    """Creates one contact per case; returns [(entry, expected allowed, reason)]."""
    cases = []

    def contact(email, *consents):
        cid = srv.create_contact(email=email, collected_for=["marketing"])
        for status, extra in consents:
            srv.set_consent(cid, "marketing", "email", status, **extra)
        return cid

    a = contact("consented@example.org", ("granted", {}))
    cases.append(("consented@example.org", True, "granted"))
    contact("withdrawn@example.org", ("granted", {}), ("withdrawn", {}))
    cases.append(("withdrawn@example.org", False, "withdrawn"))
    contact("expired@example.org", ("granted", PAST))
    cases.append(("expired@example.org", False, "expired"))
    contact("refused@example.org", ("refused", {}))
    cases.append(("refused@example.org", False, "refused"))
    for email, scope, value, want in (("all@example.org", "all", "", (False, "suppressed")),
                                      ("purpose@example.org", "purpose", "marketing", (False, "suppressed")),
                                      ("otherchannel@example.org", "channel", "sms", (True, "granted"))):
        contact(email, ("granted", {}))
        st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                            json={"email": email, "scope": scope, "scope_value": value,
                                  "reason": "unsubscribe"})
        assert st == 201, body
        cases.append((email, *want))
    e = contact("erased@example.org", ("granted", {}))
    st, body = srv.call("DELETE", f"/v1/contacts/{e}", token="admin")
    assert st == 200, body
    cases.append(("erased@example.org", False, "suppressed_by_list"))
    cases.append((e, False, "erased"))
    cases.append((a, True, "granted"))
    cases.append(("nobody@example.org", False, "unknown_contact"))
    # An unknown address that is on the list (imported opt-out).
    st, body = srv.call("POST", "/v1/suppressions", token="marketing",
                        json={"email": "listed@example.org", "reason": "complaint"})
    assert st == 201, body
    cases.append(("listed@example.org", False, "suppressed_by_list"))
    return cases


def check_single(srv, entry):
    key = "email" if "@" in entry else "contact_id"
    return srv.check("marketing", "email", **{key: entry})


def verify(lines, summary, cases, dup_entry):
    by_entry = {}
    for line in lines:
        e = line["entry"]
        if isinstance(e, dict):
            e = e.get("email") or e.get("contact_id")
        if line["reason"] == "invalid":
            by_entry.setdefault("__invalid__", []).append(line)
            continue
        assert e not in by_entry, f"duplicate reported twice: {e}"
        by_entry[e] = line
    same_person = 0
    for entry, allowed, reason in cases:
        got = by_entry.get(entry) or by_entry.get(entry.upper())
        assert got is not None, (entry, by_entry.keys())
        if allowed and "@" not in entry:
            # The consented contact is listed by address first and by id
            # later: one person, answered allowed once.
            allowed, reason = False, "duplicate_person"
            same_person += 1
        assert (got["allowed"], got["reason"]) == (allowed, reason), (entry, got)
    inv = by_entry["__invalid__"]
    assert len(inv) == 1 and inv[0]["allowed"] is False and isinstance(inv[0].get("line"), int), inv
    assert summary["duplicates"] == 1, summary
    assert summary["invalid"] == 1, summary
    assert summary["total"] == len(cases) + 2, summary
    assert summary["same_person"] == same_person == 1, summary
    assert summary["allowed"] == sum(1 for c in cases if c[1]) - same_person, summary
    assert summary["allowed"] + summary["denied"] == summary["total"] - summary["duplicates"], summary
    assert dup_entry.lower() in by_entry


def test_matrix_agrees_with_the_single_check_in_all_three_formats(srv):
    cases = build_matrix(srv)
    for entry, allowed, reason in cases:
        got = check_single(srv, entry)
        assert (got["allowed"], got["reason"]) == (allowed, reason), ("check", entry, got)
    entries = [c[0] for c in cases]
    dup = entries[0].upper()  # the same address, another spelling
    listed = entries + [dup, "not an address"]

    lines, summary = post_list(srv, json.dumps(listed), "application/json")
    verify(lines, summary, cases, entries[0])
    # The invalid entry of a JSON array is reported by its position.
    inv = [l for l in lines if l["reason"] == "invalid"][0]
    assert inv["line"] == len(listed), inv

    nd = "\n".join(json.dumps(e if i % 2 else {"email" if "@" in e else "contact_id": e})
                   for i, e in enumerate(listed)) + "\n"
    lines, summary = post_list(srv, nd, "application/x-ndjson")
    verify(lines, summary, cases, entries[0])
    inv = [l for l in lines if l["reason"] == "invalid"][0]
    assert inv["line"] == len(listed), inv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["email"])
    for e in listed:
        w.writerow([e])
    lines, summary = post_list(srv, buf.getvalue(), "text/csv")
    verify(lines, summary, cases, entries[0])
    inv = [l for l in lines if l["reason"] == "invalid"][0]
    assert inv["line"] == len(listed) + 1, inv  # after the header line

    headerless = "\n".join(listed) + "\n"
    lines, summary = post_list(srv, headerless, "text/csv")
    verify(lines, summary, cases, entries[0])


def test_filter_is_one_audit_entry_with_a_digest_and_a_release_record(srv):
    a = srv.create_contact(email="yes@example.org", collected_for=["marketing"])
    srv.set_consent(a, "marketing", "email", "granted")
    b = srv.create_contact(email="no@example.org", collected_for=["marketing"])
    body = "yes@example.org\nno@example.org\nghost@example.org\n"
    before = len(srv.audit_rows("action = 'outreach.filter'"))
    lines, summary = post_list(srv, body, "text/csv")
    rows = srv.audit_rows("action = 'outreach.filter'")
    assert len(rows) == before + 1, rows
    row = rows[-1]
    detail = json.loads(row["detail"])
    import hashlib
    # Keyed (a short list is not recovered by hashing likely addresses).
    assert detail["list_hmac"] == summary["list_hmac"] != hashlib.sha256(body.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", detail["list_hmac"]), detail
    assert detail["total"] == 3 and detail["allowed"] == 1, detail
    assert row["purpose"] == "marketing" and row["channel"] == "email"
    # No plaintext address in the audit trail.
    for r in srv.audit_rows():
        assert "@example.org" not in repr(r), r
    rel = detail["release_id"]
    st, out = srv.call("GET", f"/v1/outreach/releases/{rel}/contacts/{a}", token="auditor")
    assert st == 200 and out["released"] is True and out["released_total"] == 1, out
    st, out = srv.call("GET", f"/v1/outreach/releases/{rel}/contacts/{b}", token="auditor")
    assert st == 200 and out["released"] is False, out
    st, out = srv.call("GET", f"/v1/outreach/releases/{rel}/contacts/{b}", token="marketing")
    assert_problem(st, out, 403)


def test_a_list_that_breaks_off_is_audited_with_every_entry_it_read(srv):
    """Entries are decided in blocks (service/domain/outreach.c); a JSON
    array whose framing breaks after more than one block is refused, and its
    audit entry still counts every entry read, the last block's too."""
    n = 3000
    body = "[" + ",".join('"nobody%d@example.org"' % i for i in range(n)) + ",,]"
    st, out = srv.call("POST", FILTER, token="marketing", body=body, content_type="application/json")
    assert 400 <= st < 500, (st, out)
    row = srv.audit_rows("action = 'outreach.filter'")[-1]
    detail = json.loads(row["detail"])
    assert row["reason"] == "malformed_list", row
    assert detail["total"] == n and detail["denied"] == n and detail["allowed"] == 0, detail


def test_filter_requires_the_role_and_the_purpose(srv):
    st, out = srv.call("POST", FILTER, token="support", body="[]", content_type="application/json")
    assert_problem(st, out, 403)
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=care&channel=sms", token="marketing",
                       body="[]", content_type="application/json")
    assert_problem(st, out, 403)
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=marketing", token="marketing",
                       body="[]", content_type="application/json")
    assert_problem(st, out, 400)
    # Unknown names are 422, as in the single check.
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=astrology&channel=email", token="marketing",
                       body="[]", content_type="application/json")
    assert_problem(st, out, 422)
    assert out["reason"] == "unknown_purpose", out
    st, out = srv.call("POST", "/v1/outreach/filter?purpose=marketing&channel=pigeon", token="marketing",
                       body="[]", content_type="application/json")
    assert_problem(st, out, 422)
    st, out = srv.call("POST", FILTER, token="marketing", body="x", content_type="text/plain")
    assert_problem(st, out, 415)
    st, out = srv.call("POST", FILTER, token="marketing", body='["a@b.org" "c@d.org"', content_type="application/json")
    assert_problem(st, out, 400)


def open_spills(srv):
    """{/proc path: size} of the files the server holds open in its data
    directory with no name: the spill (O_TMPFILE, or created and unlinked),
    which a walk of the directory cannot see."""
    data = os.path.realpath(srv.data)
    fds = f"/proc/{srv.proc.pid}/fd"
    out = {}
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith(data + "/") and target.endswith(" (deleted)"):
            out[os.path.join(fds, fd)] = os.stat(os.path.join(fds, fd)).st_size
    return out


def test_spill_file_holds_no_plaintext(srv):
    """While a list streams, the spill the server holds (read through
    /proc/PID/fd, the only way to see a file with no name) and the data
    directory hold no address in clear."""
    import http.client
    import ssl
    n = 30000
    body = "".join(f"secret-person-{i}@example.org\n" for i in range(n)).encode()
    cut = len(body) - 1000
    seen = {}

    def upload():
        yield body[:cut]
        # The answers to what was sent so far are in the spill now (the reply
        # cannot start before the upload ends); wait until it stops growing.
        deadline, last = time.time() + 30, None
        while time.time() < deadline:
            spills = open_spills(srv)
            size = sum(spills.values())
            if size > 0 and size == last:
                break
            last = size
            time.sleep(0.3)
        for path, size in spills.items():
            with open(path, "rb") as fh:
                seen[path] = fh.read()
        for root, _, files in os.walk(srv.data):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    seen[os.path.join(root, f)] = fh.read()
        yield body[cut:]

    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=120,
                                       context=ssl.create_default_context(cafile=srv.cafile))
    conn.request("POST", FILTER, body=upload(),
                 headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                          "Content-Type": "text/csv", "Content-Length": str(len(body))})
    resp = conn.getresponse()
    lines = ndjson(resp.read().decode())
    conn.close()
    assert resp.status == 200 and lines[-1]["summary"]["total"] == n and len(lines) == n + 1, lines[-1]
    spilled = [p for p in seen if p.startswith("/proc/")]
    assert spilled and sum(len(seen[p]) for p in spilled) >= 64 * 1024, {p: len(seen[p]) for p in seen}
    for path, data in seen.items():
        assert b"secret-person-" not in data, f"an address in clear in {path}"
    for root, _, files in os.walk(srv.data):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert b"secret-person-" not in fh.read(), f


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_list(srv, n, tag):
    def gen():
        chunk = []
        for i in range(n):
            chunk.append(f"{tag}-{i}@example.org\n")
            if len(chunk) == 5000:
                yield "".join(chunk).encode()
                chunk = []
        if chunk:
            yield "".join(chunk).encode()
    body = b"".join(gen())
    st, hdrs, data = srv.raw("POST", FILTER, body=body,
                             headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                                      "Content-Type": "text/csv"})
    assert st == 200, data[:300]
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    summary = json.loads(last)["summary"]
    assert summary["total"] == n and summary["denied"] == n, summary
    return rss_kb(srv.proc.pid)


def test_memory_does_not_grow_with_the_list(srv):
    run_list(srv, 20000, "warm")
    small = run_list(srv, 20000, "small")
    big = run_list(srv, 200000, "big")
    # 200k distinct 8-byte digests need ~4 MiB of dedupe slots; anything that
    # held the list (or the answers) would grow by tens of MiB. Under ASan the
    # quarantine keeps freed memory, so the bound is checked in the normal
    # build only (the 200k list still streams through here).
    if sanitized():
        from harness import Skip
        raise Skip("memory bound not checked in an AddressSanitizer build (the lists did stream)")
    assert big - small < 16 * 1024, (small, big)


if __name__ == "__main__":
    run(globals())
