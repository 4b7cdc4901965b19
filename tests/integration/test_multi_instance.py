"""
Several consentd instances on one PostgreSQL database (issue 12): copies of
one data folder, each with its own port, sharing the database. One audit
chain orders every instance's requests; state recorded through one instance
is what the next request to any other sees.

Runs only on the PostgreSQL backend (scripts/pgtest.sh sets
CONSENTD_TEST_DATABASE); on SQLite every scenario is SKIP.
"""
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, Skip, cli, pg_admin, psql_rows, run  # noqa: E402


def fleet(n=3):
    """n instances: the first initialised, the others copies of its folder
    (keys included, as docs/operations.md says), all on its database."""
    if not pg_admin():
        raise Skip("needs the PostgreSQL backend (run through scripts/pgtest.sh)")
    first = Server(start=False)
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


if __name__ == "__main__":
    run(globals())
