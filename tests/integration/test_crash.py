"""Crash safety: kill -9 under concurrent write and check load, over and over.

Each cycle starts the server, drives consent writes (PUT consents) from four
threads and consent checks from two, kills the process with SIGKILL at a
random moment, and restarts it. Then:

- every write that was acknowledged (200 received) is in the contact's
  consent history, by its receipt id;
- every acknowledged request (write or check) has its audit entry, matched
  by the X-Request-Id the client sent;
- `consentd audit verify` exits 0.

Twenty cycles or more, bounded to about 90 seconds.
"""
import os
import random
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_problem, cli, run  # noqa: E402

CYCLES = 20
BUDGET_S = 90
WRITERS, CHECKERS = 4, 2


class Load:
    """Worker threads and what the server acknowledged to them."""

    def __init__(self, srv, cids, cycle):
        self.srv, self.cids, self.cycle = srv, cids, cycle
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.writes = []      # (request id, contact id, receipt id)
        self.checks = []      # request id
        self.errors = []      # tracebacks of workers that died of a bug, not of the kill
        self.threads = []

    def writer(self, n):
        c = self.srv.new_client()
        c.timeout = 5
        rnd = random.Random(self.cycle * 100 + n)
        i = 0
        while not self.stop.is_set():
            i += 1
            rid = f"crash-{self.cycle}-w{n}-{i}"
            cid = rnd.choice(self.cids)
            status = rnd.choice(["granted", "withdrawn", "refused"])
            body = f'{{"channel": "email", "status": "{status}", "source": "crash-test"}}'
            try:
                st, _, data = c.request("PUT", f"/v1/contacts/{cid}/consents/marketing", body=body,
                                        headers={"Authorization": f"Bearer {self.srv.tokens['admin']}",
                                                 "Content-Type": "application/json",
                                                 "X-Request-Id": rid})
            except Exception:
                return  # the server is gone
            if st == 200:
                import json
                receipt = json.loads(data)["receipt_id"]
                with self.lock:
                    self.writes.append((rid, cid, receipt))

    def checker(self, n):
        c = self.srv.new_client()
        c.timeout = 5
        rnd = random.Random(self.cycle * 100 + 50 + n)
        i = 0
        while not self.stop.is_set():
            i += 1
            rid = f"crash-{self.cycle}-c{n}-{i}"
            body = f'{{"contact_id": "{rnd.choice(self.cids)}", "purpose": "marketing", "channel": "email"}}'
            try:
                st, _, _ = c.request("POST", "/v1/consent/check", body=body,
                                     headers={"Authorization": f"Bearer {self.srv.tokens['marketing']}",
                                              "Content-Type": "application/json",
                                              "X-Request-Id": rid})
            except Exception:
                return
            if st == 200:
                with self.lock:
                    self.checks.append(rid)

    def guarded(self, work, n):
        # An exception in a thread is only printed; kept here, the test fails.
        try:
            work(n)
        except Exception:
            import traceback
            with self.lock:
                self.errors.append(traceback.format_exc())

    def start(self):
        for n in range(WRITERS):
            self.threads.append(threading.Thread(target=self.guarded, args=(self.writer, n), daemon=True))
        for n in range(CHECKERS):
            self.threads.append(threading.Thread(target=self.guarded, args=(self.checker, n), daemon=True))
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def audited_request_ids(srv, prefix):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    ids = {r[0] for r in con.execute("SELECT request_id FROM audit WHERE request_id LIKE ?",
                                     (prefix + "%",))}
    con.close()
    return ids


def test_kill_9_under_load_loses_no_acknowledged_write_or_audit_entry(srv):
    cids = [srv.create_contact(email=f"crash{i}@example.org", name=f"Crash {i}",
                               collected_for=["service", "marketing"]) for i in range(6)]
    t0 = time.time()
    total_writes = total_checks = cycles = 0
    rnd = random.Random(7)
    while cycles < CYCLES or (time.time() - t0 < 20 and cycles < 40):
        assert time.time() - t0 < BUDGET_S, f"only {cycles} cycles in {BUDGET_S}s"
        load = Load(srv, cids, cycles)
        load.start()
        time.sleep(rnd.uniform(0.05, 0.5))
        srv.kill9()
        load.join()
        assert not load.errors, f"cycle {cycles}: a load thread failed:\n{load.errors[0]}"
        srv.start()
        # Acknowledged writes are in the history, by receipt.
        receipts = {}
        for cid in cids:
            st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
            assert st == 200, body
            receipts[cid] = {h["receipt_id"] for h in body["history"]}
        for rid, cid, receipt in load.writes:
            assert receipt in receipts[cid], f"cycle {cycles}: acknowledged write {rid} lost"
        # Acknowledged requests have their audit entries.
        audited = audited_request_ids(srv, f"crash-{cycles}-")
        missing = [rid for rid, _, _ in load.writes if rid not in audited]
        missing += [rid for rid in load.checks if rid not in audited]
        assert not missing, f"cycle {cycles}: acknowledged without audit entry: {missing[:5]}"
        code, out, err = cli("audit", "verify", "--data", srv.data, check=False)
        assert code == 0, f"cycle {cycles}: audit verify exited {code}: {out} {err}"
        total_writes += len(load.writes)
        total_checks += len(load.checks)
        cycles += 1
    assert cycles >= CYCLES
    assert total_writes > 0 and total_checks > 0, (total_writes, total_checks)
    print(f"  {cycles} cycles, {total_writes} acknowledged writes, {total_checks} acknowledged checks, "
          f"{time.time() - t0:.1f}s", flush=True)
    # The service still works normally after all that.
    st, body = srv.call("PUT", f"/v1/contacts/{cids[0]}/consents/astrology", token="admin",
                        json={"channel": "email", "status": "granted"})
    assert_problem(st, body, 422)


if __name__ == "__main__":
    run(globals())
