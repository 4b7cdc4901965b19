"""
Several consentd instances on one PostgreSQL database (issue 12): copies of
one data folder, each with its own port, sharing the database. One audit
chain orders every instance's requests; state recorded through one instance
is what the next request to any other sees.

Runs only on the PostgreSQL backend (scripts/pgtest.sh sets
CONSENTD_TEST_DATABASE); on SQLite every scenario is SKIP.
"""
import collections
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, cli, needs_postgresql, pg_admin, psql_rows, run  # noqa: E402
from smtpsink import Sink  # noqa: E402
from test_webhooks import Receiver, subscribe  # noqa: E402


def fleet(n=3, conf=None):
    """n instances: the first initialised, the others copies of its folder
    (keys included, as docs/operations.md says), all on its database. conf:
    settings written into the first folder's consentd.conf before the copy."""
    if not pg_admin():
        needs_postgresql()
    first = Server(start=False)
    if conf:
        path = os.path.join(first.data, "consentd.conf")
        with open(path) as f:
            cfg = json.load(f)
        cfg.update(conf)
        with open(path, "w") as f:
            json.dump(cfg, f)
    servers = [first]
    for i in range(1, n):
        data = os.path.join(first.tmp, f"copy{i}")
        shutil.copytree(first.data, data)
        s = Server(roles=(), start=False, data=data, database=first.pg)
        s.tokens = first.tokens  # principals live in the shared database
        servers.append(s)
    for s in servers:
        s.start()
    return servers


def close_all(servers):
    for s in servers:
        s.stop()
    shutil.rmtree(servers[0].tmp, ignore_errors=True)


def chain_is_gapless(uri):
    row = psql_rows(uri, "SELECT count(*) AS n, coalesce(max(seq), 0) AS top, "
                         "coalesce(min(seq), 0) AS low FROM audit")[0]
    assert row["n"] == row["top"] and row["low"] in (0, 1), row
    return row["n"]


def writers(servers, per_thread, acked, errors, stop=None):
    """One thread per instance, each creating contacts through its own
    instance; acked collects (contact id, request id) of every 201."""

    def work(k, s):
        c = s.new_client()
        for i in range(per_thread):
            if stop is not None and stop.is_set():
                return
            rid = f"mi-{k}-{i}-{os.urandom(3).hex()}"
            try:
                st, body = s.call("POST", "/v1/contacts", token="admin", client=c,
                                  headers={"X-Request-Id": rid},
                                  json={"email": f"w{k}.{i}.{rid}@example.org",
                                        "collected_for": ["service", "marketing"]})
            except OSError as e:  # an instance being killed: not acknowledged
                errors.append(repr(e))
                c = s.new_client()
                continue
            if st == 201:
                acked.append((body["id"], rid))
            elif st != 503:
                errors.append((st, body))

    ts = [threading.Thread(target=work, args=(k, s)) for k, s in enumerate(servers)]
    for t in ts:
        t.start()
    return ts


def test_three_instances_write_one_gapless_chain_that_verifies_from_each_folder():
    servers = fleet(3)
    try:
        acked, errors = [], []
        for t in writers(servers, 25, acked, errors):
            t.join()
        assert not errors, errors[:5]
        assert len(acked) == 75, len(acked)
        uri = servers[0].pg
        chain_is_gapless(uri)
        # Every acknowledged request has its audit entry, and every instance
        # reads every contact.
        rids = {r["request_id"] for r in psql_rows(uri, "SELECT request_id FROM audit")}
        missing = [rid for _, rid in acked if rid not in rids]
        assert not missing, missing[:5]
        for s in servers:
            st, _ = s.call("GET", f"/v1/contacts/{acked[-1][0]}?purpose=service", token="admin")
            assert st == 200, st
        for s in servers:
            s.stop()
        for s in servers:
            rc, out, err = cli("audit", "verify", "--data", s.data, check=False)
            assert rc == 0, (s.data, rc, out, err)
    finally:
        close_all(servers)


def test_a_withdrawal_on_one_instance_is_denied_on_the_next_check_on_another():
    a, b, c = servers = fleet(3)
    try:
        cid = a.create_contact(email="shared.state@example.org")
        a.set_consent(cid, "marketing", "email", "granted")
        assert b.check("marketing", "email", contact_id=cid)["allowed"] is True
        c.set_consent(cid, "marketing", "email", "withdrawn")
        res = b.check("marketing", "email", contact_id=cid)
        assert res["allowed"] is False and res["reason"] == "withdrawn", res
        res = a.check("marketing", "email", contact_id=cid)
        assert res["allowed"] is False, res
    finally:
        close_all(servers)


def test_killing_one_instance_repeatedly_under_load_loses_no_acknowledged_write():
    servers = fleet(3)
    victim = servers[0]
    try:
        acked, errors = [], []
        stop = threading.Event()
        ts = writers(servers[1:], 400, acked, errors, stop)
        # The victim takes writes too, between its deaths.
        for _round in range(4):
            time.sleep(0.5)
            victim.kill9()
            time.sleep(0.2)
            victim.start()
            st, body = victim.call("POST", "/v1/contacts", token="admin",
                                   json={"email": f"victim{_round}@example.org",
                                         "collected_for": ["service"]})
            assert st == 201, (st, body)
            acked.append((body["id"], None))
        stop.set()
        for t in ts:
            t.join()
        assert not [e for e in errors if not isinstance(e, str)], errors[:5]
        uri = servers[0].pg
        chain_is_gapless(uri)
        ids = {r["id"] for r in psql_rows(uri, "SELECT id FROM contact")}
        lost = [cid for cid, _ in acked if cid not in ids]
        assert not lost, lost[:5]
        rids = {r["request_id"] for r in psql_rows(uri, "SELECT request_id FROM audit")}
        unaudited = [rid for _, rid in acked if rid is not None and rid not in rids]
        assert not unaudited, unaudited[:5]
        for s in servers:
            s.stop()
        for s in servers:
            rc, out, err = cli("audit", "verify", "--data", s.data, check=False)
            assert rc == 0, (s.data, rc, out, err)
    finally:
        close_all(servers)


def wait_for(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_instances_post_each_webhook_and_send_each_mail_once():
    # Every instance runs the webhook and mail workers over the shared
    # outbox; a delivery is claimed by one of them (a lease in the
    # database), so the subscriber and the relay each see every item once.
    sink = Sink(offer_starttls=True)
    rec = Receiver(delay=0.15)  # slow answers: both instances' workers overlap
    a, b = servers = fleet(2, conf={
        "webhooks": {"allow_private_targets": True, "retry_base_ms": 50},
        "mail": {"smtp_url": f"smtp://127.0.0.1:{sink.port}", "from": "privacy@acme.example",
                 "ca_file": sink.cert, "retry_base_ms": 200}})
    try:
        subscribe(a, rec)
        n = 12
        links = []
        for i in range(n):
            s = servers[i % 2]
            cid = s.create_contact(email=f"fleet.mail{i}@example.org")
            s.set_consent(cid, "marketing", "email", "granted")
            st, out = servers[(i + 1) % 2].call("POST", f"/v1/contacts/{cid}/preference-link",
                                                token="admin", json={"capability": "manage"})
            assert st == 202, (st, out)
            links.append(out["link_id"])
        uri = a.pg
        wait_for(lambda: not psql_rows(uri, "SELECT id FROM webhook_delivery WHERE state = 'pending'")
                 and not psql_rows(uri, "SELECT id FROM mail_outbox WHERE sent_us IS NULL"),
                 what="every delivery recorded")
        time.sleep(1.0)  # a second post would come within a poll or two
        ids = collections.Counter(h["webhook-id"] for h, _, _, _ in rec.got)
        sent = collections.Counter(
            email.message_from_bytes(m["data"], policy=email.policy.default)["X-Consentd-Link-Id"]
            for m in sink.messages)
        posted_once = len(ids) == n and set(ids.values()) == {1}
        mailed_once = sorted(sent) == sorted(links) and set(sent.values()) == {1}
        assert posted_once and mailed_once, (f"{sum(ids.values())} posts of {len(ids)} deliveries, "
                                             f"{sum(sent.values())} mails of {len(sent)}", ids, sent)
        # Released on outcome: no claim outlives its delivery.
        assert not psql_rows(uri, "SELECT id FROM mail_outbox WHERE claim_until > 0")
        assert not psql_rows(uri, "SELECT id FROM webhook_endpoint WHERE claim_until > 0")
    finally:
        close_all(servers)
        rec.close()
        sink.close()


def readyz(s):
    st, body = s.call("GET", "/readyz")
    return st, body


def activity(s, tag):
    cid = s.create_contact(email=f"anchor.{tag}.{os.urandom(3).hex()}@example.org")
    s.set_consent(cid, "marketing", "email", "granted")
    s.check("marketing", "email", contact_id=cid)


def anchor_size(s):
    with open(os.path.join(s.data, "audit-anchor.json")) as f:
        return json.load(f)["size"]


def test_an_instance_restarted_after_another_signed_newer_checkpoints_raises_no_alarm():
    a, b = servers = fleet(2)
    try:
        activity(a, "a1")
        activity(b, "b1")
        a.stop()  # signs a checkpoint: a's anchor
        for i in range(3):
            activity(b, f"b{i + 2}")
        b.stop()  # signs a newer one, which a's folder has never seen
        older = anchor_size(a)
        assert older < anchor_size(b), (older, anchor_size(b))
        a.start(wait_ready=False)
        st, body = readyz(a)
        assert st == 200 and body.get("audit_intact") is not False, (st, body, a._out)
        assert "ALARM" not in "".join(a._out), a._out
        assert anchor_size(a) > older  # advanced to the checkpoint it verified
        b.start()
        activity(a, "a2")
        activity(b, "b5")
        for s in servers:
            s.stop()
        for s in servers:
            rc, out, err = cli("audit", "verify", "--data", s.data, check=False)
            assert rc == 0, (s.data, rc, out, err)
    finally:
        close_all(servers)


def test_a_trail_rewritten_under_both_instances_raises_the_alarm_on_both():
    a, b = servers = fleet(2)
    try:
        activity(a, "a1")
        activity(b, "b1")
        a.stop()
        activity(b, "b2")
        b.stop()
        low = min(anchor_size(a), anchor_size(b))
        # Whoever holds the database (not the keys) rewrites every entry from
        # the older anchor on and drops the checkpoints that contradict it.
        subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", a.pg, "-c",
                        "ALTER TABLE audit DISABLE TRIGGER ALL;"
                        "ALTER TABLE audit_checkpoint DISABLE TRIGGER ALL;"
                        f"UPDATE audit SET decision = 'allow', hash = sha256(hash) WHERE seq >= {low};"
                        f"DELETE FROM audit_checkpoint WHERE size >= {low};"
                        "ALTER TABLE audit ENABLE TRIGGER ALL;"
                        "ALTER TABLE audit_checkpoint ENABLE TRIGGER ALL;"],
                       check=True, capture_output=True, timeout=60)
        for s in servers:
            s.start(wait_ready=False)
        for s in servers:
            st, body = s.call("POST", "/v1/consent/check", token="marketing",
                              json={"email": "nobody@example.org", "purpose": "marketing", "channel": "email"})
            assert st == 503 and body["type"].endswith("/audit-altered"), (st, body)
            st, body = readyz(s)
            assert st == 503 and body["audit_intact"] is False, (st, body)
        for s in servers:
            s.stop()
            rc, out, err = cli("audit", "verify", "--data", s.data, check=False)
            assert rc == 5, (s.data, rc, out, err)
    finally:
        close_all(servers)


def test_a_customer_form_is_accepted_once_by_the_whole_fleet():
    # The spent CSRF values are rows: a form captured once cannot be
    # replayed through another instance.
    a, b = servers = fleet(2)
    try:
        cid = a.create_contact(email="form.replay@example.org")
        a.set_consent(cid, "marketing", "email", "granted")
        st, out = a.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing")
        assert st == 201, (st, out)
        tok = out["url"].rsplit("/", 1)[1]
        st, _, html = a.raw("GET", f"/p/{tok}")
        assert st == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
        form = urllib.parse.urlencode({"csrf": csrf, "action": "set", "purpose": "marketing",
                                       "channel": "email", "status": "withdrawn"}).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        st, _, _ = a.raw("POST", f"/p/{tok}", body=form, headers=hdrs)
        assert st == 303, st
        a.set_consent(cid, "marketing", "email", "granted")
        st, _, _ = b.raw("POST", f"/p/{tok}", body=form, headers=hdrs)  # replayed elsewhere
        assert st == 403, st
        assert b.check("marketing", "email", contact_id=cid)["allowed"] is True
        rows = psql_rows(a.pg, "SELECT reason FROM audit WHERE action = 'customer.form'")
        assert [r["reason"] for r in rows] == ["csrf_replayed"], rows
    finally:
        close_all(servers)


def test_one_form_posted_to_two_instances_at_once_is_accepted_by_one():
    a, b = servers = fleet(2)
    try:
        cid = a.create_contact(email="form.race@example.org")
        st, out = a.call("POST", f"/v1/contacts/{cid}/preference-link", token="marketing")
        assert st == 201, (st, out)
        tok = out["url"].rsplit("/", 1)[1]
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        for round_ in range(5):
            a.set_consent(cid, "marketing", "email", "granted")
            st, _, html = a.raw("GET", f"/p/{tok}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', html.decode()).group(1)
            form = urllib.parse.urlencode({"csrf": csrf, "action": "set", "purpose": "marketing",
                                           "channel": "email", "status": "withdrawn"}).encode()
            go, got = threading.Barrier(2), []

            def post(s):
                c = s.new_client()
                go.wait()
                st, h, body = c.request("POST", f"/p/{tok}", body=form, headers=hdrs)
                got.append((st, h.get("content-type", ""), body))
            ts = [threading.Thread(target=post, args=(s,)) for s in servers]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            assert sorted(st for st, _, _ in got) == [303, 403], (round_, got)
            for st, ctype, body in got:
                if st == 403 and ctype.startswith("application/problem+json"):
                    assert json.loads(body)["reason"] == "csrf_replayed", body
        rows = psql_rows(a.pg, "SELECT count(*) AS n FROM audit WHERE action = 'customer.consent' "
                               "AND decision = 'allow'")
        assert rows[0]["n"] == 5, rows
        # Which refusals the write decided (both posts passed the read):
        # for the log only, since the timing is the machine's.
        raced = psql_rows(a.pg, "SELECT count(*) AS n FROM audit WHERE action = 'customer.consent' "
                                "AND reason = 'csrf_replayed'")[0]["n"]
        print(f"  {raced} of 5 refusals decided by the spend in the transaction, "
              f"{5 - raced} by the read before it")
    finally:
        close_all(servers)


if __name__ == "__main__":
    run(globals())
