"""bench_filter: imports N contacts (with a marketing consent each), then
filters a list of N emails (half known, half unknown) over TLS, measuring
end-to-end time and the server's RSS growth. A benchmark, not a test.

    python3 tests/bench/bench_filter.py --binary build/consentd [-n 1000000]
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=1000000)
    a = ap.parse_args()
    harness.ARGS = a
    srv = harness.Server()
    try:
        n = a.n
        consent = ',"consents":[{"purpose":"marketing","channel":"email","status":"granted"}]}\n'
        body = "".join('{"email":"c%d@example.org","collected_for":["marketing"]%s' % (i, consent)
                       for i in range(n)).encode()
        t0 = time.time()
        st, hdrs, data = srv.raw("POST", "/v1/contacts/import", body=body,
                                 headers={"Authorization": f"Bearer {srv.tokens['admin']}",
                                          "Content-Type": "application/x-ndjson"},
                                 client=harness.Client("127.0.0.1", srv.port, srv.cafile, timeout=3600))
        dt = time.time() - t0
        summary = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])["summary"]
        print(f"import: {summary['created']} contacts in {dt:.1f} s = {summary['created'] / dt:,.0f} contacts/s "
              f"(status {st})")
        del body, data
        # Startup with N contacts (goal < 1 s with 1M) and idle memory (goal < 30 MB).
        srv.stop()
        t0 = time.time()
        srv.start()
        print(f"startup with {summary['created']} contacts: {time.time() - t0:.2f} s to ready; "
              f"idle RSS {rss_kb(srv.proc.pid) / 1024:.1f} MiB")
        # Half the list is known (every other contact), half is unknown.
        lst = "".join(("c%d@example.org\n" % (2 * i)) if i % 2 == 0 else ("u%d@example.org\n" % i)
                      for i in range(n)).encode()
        client = harness.Client("127.0.0.1", srv.port, srv.cafile, timeout=3600)
        client.request("GET", "/healthz")
        base = rss_kb(srv.proc.pid)
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(srv.proc.pid))
                time.sleep(0.02)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.time()
        st, hdrs, data = client.request("POST", "/v1/outreach/filter?purpose=marketing&channel=email", body=lst,
                                        headers={"Authorization": f"Bearer {srv.tokens['marketing']}",
                                                 "Content-Type": "text/csv"})
        dt = time.time() - t0
        stop.set()
        th.join()
        summary = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])["summary"]
        print(f"filter: {summary['total']} entries ({summary['allowed']} allowed) in {dt:.2f} s = "
              f"{summary['total'] / dt:,.0f} entries/s end to end over TLS (status {st}); "
              f"RSS {base / 1024:.1f} MiB -> peak {peak[0] / 1024:.1f} MiB "
              f"(growth {(peak[0] - base) / 1024:.1f} MiB); reply {len(data) / 1e6:.1f} MB")
    finally:
        srv.close()


if __name__ == "__main__":
    main()
