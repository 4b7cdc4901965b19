"""
The audit trail cannot be laundered by waiting: whoever can write the
database (drop the triggers, cut or rewrite the tail and its checkpoint rows)
does not get a server, a restart, a periodic checkpoint or a CLI verb to sign
over the forgery. The server proves the chain against the signed anchors
outside the database, fails closed when it does not hold, and verifies the
trail it serves on a schedule.
"""
import glob
import json
import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, cli, run  # noqa: E402
from test_audit import TRIGGERS, activity, row_hash, rows  # noqa: E402


def anchor_path(srv):
    return os.path.join(srv.data, "audit-anchor.json")


def generations(srv):
    return sorted(glob.glob(anchor_path(srv) + ".d/*.json"))


def read_anchor(path):
    with open(path) as f:
        return json.loads(f.read())


def drop_triggers(con):
    for t in TRIGGERS + ("checkpoint_no_delete", "checkpoint_no_update"):
        con.execute(f"DROP TRIGGER IF EXISTS {t}")


def tamper_stopped(srv, fn):
    srv.stop()
    con = sqlite3.connect(srv.db)
    con.row_factory = sqlite3.Row
    drop_triggers(con)
    fn(con)
    con.commit()
    con.close()


def cut_tail_and_checkpoints(srv, keep):
    def cut(con):
        con.execute("DELETE FROM audit WHERE seq > ?", (keep,))
        con.execute("DELETE FROM audit_checkpoint WHERE size > ?", (keep,))
    tamper_stopped(srv, cut)


def verify_cli(srv):
    code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
    return code, out + err


def wait_ready_status(srv, want_status, timeout=20):
    deadline = time.time() + timeout
    while True:
        st, body = srv.call("GET", "/readyz")
        if st == want_status or time.time() > deadline:
            return st, body
        time.sleep(0.05)


def metric(srv, name):
    text = srv.raw("GET", "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def assert_fails_closed(srv, fault=None):
    """Every audited route is 503 audit-altered; /readyz says so by name."""
    st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                        json={"email": "nobody@example.org", "purpose": "marketing", "channel": "email"})
    assert st == 503 and body["type"].endswith("/audit-altered"), (st, body)
    st, body = srv.call("GET", "/v1/audit/verify", token="auditor")
    assert st == 503, (st, body)
    st, body = wait_ready_status(srv, 503)
    assert st == 503 and body["audit_intact"] is False and body["audit_fault"], (st, body)
    if fault:
        assert body["audit_fault"] == fault, body
    assert metric(srv, "consentd_audit_intact") == 0


def test_a_tail_cut_with_its_checkpoints_is_not_laundered_by_restarts_requests_or_cli_verbs(srv):
    activity(srv)
    srv.stop()  # signs a checkpoint over everything: the anchor covers it all
    anchored = read_anchor(anchor_path(srv))
    cut = anchored["size"] - 3
    cut_tail_and_checkpoints(srv, cut)
    code, out = verify_cli(srv)
    assert code == 5 and "(truncated)" in out, (code, out)

    # What used to launder it: a restart, requests, a periodic checkpoint,
    # a clean shutdown (final checkpoint), and a CLI verb that appends.
    for _ in range(2):
        srv.start(wait_ready=False)
        assert_fails_closed(srv, "truncated")
        assert "ALARM (truncated)" in "".join(srv._out), srv._out
        srv.stop()
    code, out, err = cli("token", "create", "--data", srv.data, "--role", "admin",
                         "--name", "late-admin", check=False)
    assert code == 5 and "not intact" in err, (code, out, err)
    code, out, err = cli("keys", "rotate", "--data", srv.data, check=False)
    assert code == 5, (code, out, err)

    # Nothing signed over the forgery: the anchor and its generations are
    # unchanged, and verification still fails.
    assert read_anchor(anchor_path(srv)) == anchored
    assert max(int(os.path.basename(g)[:20]) for g in generations(srv)) == anchored["size"]
    assert max(r["seq"] for r in rows(srv.db)) == cut  # nothing appended
    code, out = verify_cli(srv)
    assert code == 5 and "(truncated)" in out, (code, out)


def test_a_consistent_rewrite_of_the_tail_is_not_signed_by_the_next_server(srv):
    activity(srv)
    srv.stop()
    anchored = read_anchor(anchor_path(srv))
    size = anchored["size"]

    def rewrite(con):
        # Rewrite the last entries (hide a denial) with every hash recomputed,
        # and drop the checkpoint rows that would contradict it.
        con.row_factory = sqlite3.Row
        all_rows = [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY seq")]
        prev = bytes(all_rows[size - 4]["hash"])
        for r in all_rows[size - 3:]:
            r["reason"] = "allowed"
            r["decision"] = "allow"
            r["prev_hash"] = prev
            r["hash"] = row_hash(r, prev)
            prev = r["hash"]
            con.execute("DELETE FROM audit WHERE seq = ?", (r["seq"],))
            con.execute(f"INSERT INTO audit ({', '.join(r)}) VALUES ({', '.join('?' for _ in r)})",
                        list(r.values()))
        con.execute("DELETE FROM audit_checkpoint WHERE size >= ?", (size - 2,))
    tamper_stopped(srv, rewrite)
    srv.start(wait_ready=False)
    assert_fails_closed(srv, "rewritten")
    srv.stop()
    assert read_anchor(anchor_path(srv)) == anchored
    code, out = verify_cli(srv)
    assert code == 5 and "(rewritten)" in out, (code, out)


def test_a_deleted_anchor_file_is_a_verification_failure_not_ok(srv):
    activity(srv)
    srv.stop()
    os.unlink(anchor_path(srv))
    code, out = verify_cli(srv)
    assert code == 5 and "(anchor)" in out and "deleted" in out, (code, out)
    assert "anchored up to 0" not in out
    srv.start(wait_ready=False)
    assert_fails_closed(srv, "anchor")
    srv.stop()
    assert not os.path.exists(anchor_path(srv))  # not rewritten by the server


def test_an_anchor_replaced_by_an_older_generation_is_detected(srv):
    activity(srv)
    srv.restart()
    srv.check("marketing", "email", email="nobody@example.org")
    srv.stop()
    gens = generations(srv)
    assert len(gens) >= 2, gens
    shutil.copy(gens[0], anchor_path(srv))
    code, out = verify_cli(srv)
    assert code == 5 and "(anchor)" in out and "replaced by an older one" in out, (code, out)


def test_a_forged_anchor_file_is_detected(srv):
    activity(srv)
    srv.stop()
    a = read_anchor(anchor_path(srv))
    a["size"] = a["size"] + 1  # the signature no longer matches
    with open(anchor_path(srv), "w") as f:
        f.write(json.dumps(a) + "\n")
    code, out = verify_cli(srv)
    assert code == 5 and "(anchor)" in out and "not validly signed" in out, (code, out)


def test_entries_with_no_anchor_and_no_checkpoint_fail_verification(srv):
    activity(srv)
    srv.stop()

    def strip(con):
        con.execute("DELETE FROM audit_checkpoint")
    tamper_stopped(srv, strip)
    os.unlink(anchor_path(srv))
    shutil.rmtree(anchor_path(srv) + ".d")
    code, out = verify_cli(srv)
    assert code == 5 and "(unanchored)" in out, (code, out)
    assert "ok:" not in out
    srv.start(wait_ready=False)
    assert_fails_closed(srv, "unanchored")


def test_a_fresh_trail_is_anchored_before_its_first_reply():
    # The very first entries are covered by a signed anchor before anyone is
    # answered, so a crash right after never leaves an unanchored trail.
    s = Server(roles=(), start=False)
    try:
        s.start()
        st, _ = s.call("GET", "/v1/audit", token="not-a-token")
        assert st == 401
        s.stop(sig=9)
        code, out = verify_cli(s)
        assert code == 0 and "ok: 1 entries" in out and "anchored up to 1)" in out, (code, out)
    finally:
        s.close()


def test_a_running_server_whose_stored_head_moves_back_fails_closed(srv):
    activity(srv)
    head = max(r["seq"] for r in rows(srv.db))
    # Someone with the database file cuts the newest entries under a running
    # server (WAL mode lets a second writer in between batches).
    con = sqlite3.connect(srv.db, timeout=10)
    drop_triggers(con)
    con.execute("DELETE FROM audit WHERE seq > ?", (head - 2,))
    con.commit()
    con.close()
    st, body = srv.call("POST", "/v1/consent/check", token="marketing",
                        json={"email": "x@example.org", "purpose": "marketing", "channel": "email"})
    assert st == 503 and body["type"].endswith("/audit-altered"), (st, body)
    assert_fails_closed(srv, "diverged")
    srv.stop()
    assert "ALARM (diverged)" in "".join(srv._out)
    assert max(r["seq"] for r in rows(srv.db)) == head - 2  # nothing appended since


def test_a_cli_verb_while_the_server_runs_extends_the_chain_it_holds(srv):
    activity(srv)
    cli("token", "create", "--data", srv.data, "--role", "support", "--name", "support-2")
    srv.check("marketing", "email", email="nobody@example.org")
    st, body = srv.call("GET", "/readyz")
    assert st == 200 and body["audit_intact"] is True, body
    srv.stop()
    code, out = verify_cli(srv)
    assert code == 0, (code, out)


def test_scheduled_verification_raises_the_alarm_on_an_edited_entry(srv):
    srv.stop()
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        c = json.load(f)
    c["audit_verify_interval_seconds"] = 1
    with open(conf, "w") as f:
        json.dump(c, f)
    srv.start()
    activity(srv)
    assert metric(srv, "consentd_audit_intact") == 1
    last = max(r["seq"] for r in rows(srv.db))
    con = sqlite3.connect(srv.db, timeout=10)
    drop_triggers(con)
    con.execute("UPDATE audit SET reason = 'allowed' WHERE seq = ?", (last,))
    con.commit()
    con.close()
    st, body = wait_ready_status(srv, 503, timeout=15)
    assert st == 503 and body["audit_intact"] is False and body["audit_fault"] == "edited", (st, body)
    assert metric(srv, "consentd_audit_intact") == 0
    assert metric(srv, "consentd_audit_verification_failures_total") >= 1
    assert "verification of the trail failed" in "".join(srv._out)


def test_the_config_refuses_a_bad_verification_interval(srv):
    srv.stop()
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        c = json.load(f)
    c["audit_verify_interval_seconds"] = "hourly"
    with open(conf, "w") as f:
        json.dump(c, f)
    assert srv.start(expect_fail=True) == 3, srv.output
    assert "audit_verify_interval_seconds" in srv.output


def test_verify_accepts_the_saved_reply_of_the_latest_checkpoint_route(srv):
    activity(srv)
    srv.restart()
    st, body = srv.call("GET", "/v1/audit/checkpoints/latest", token="auditor")
    assert st == 200, body
    held = os.path.join(srv.tmp, "latest.json")
    with open(held, "w") as f:
        json.dump(body, f)
    code, out, err = cli("audit", "verify", "--data", srv.data, "--checkpoint", held, check=False)
    assert code == 0, (code, out, err)


if __name__ == "__main__":
    run(globals())
