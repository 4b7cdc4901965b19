"""bench_import: POST /v1/contacts/import of N contacts over TLS, half of them
with a marketing consent (the shape of issue 13), into an empty server. Prints
the rate next to its goal (docs/suppression.md), the server's CPU time per
contact, the busiest server thread's (which bounds the rate when each thread
has a core: on the shared machine the wall time mostly measures the load)
and the server's peak RSS.

    python3 tests/bench/bench_import.py --binary build/consentd [-n 1000000]
    python3 tests/bench/bench_import.py --binary build/consentd --smoke
    python3 tests/bench/bench_import.py --binary build/consentd --pg [-n N]
    python3 tests/bench/bench_import.py --binary build/consentd --database URI

--pg runs on the PostgreSQL backend against a throwaway cluster
(scripts/pgtest.sh, on this machine: each statement is a loopback round
trip); --database takes the URI of a cluster of your own instead (its user
must be allowed to create databases: the server gets a fresh one).
PostgreSQL's own CPU is not in the server figures.

--smoke imports a few hundred contacts untimed and checks every count, so the
benchmark cannot rot; ctest runs it (label bench-smoke). The server is pinned
to CPU 0 and this client to CPU 1 when the machine has two cores, as in
bench_audit.sh.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402

GOAL = 50000


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """The server's user + system CPU time so far, in seconds: on a shared,
    noisy machine the CPU a contact costs is steadier than the wall time."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid):
    """{thread id: (name, CPU seconds)} of the server's threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        out[tid] = (head.split("(", 1)[1],
                    (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def pg_cpu_s():
    """The CPU time so far of the throwaway cluster's server processes
    (scripts/pgtest.sh names its data folder), or None: its share of the
    work, which the server's own figure leaves out."""
    ctl = os.environ.get("CONSENTD_TEST_PG_CTL", "").split()
    if "-D" not in ctl:
        return None
    try:
        with open(os.path.join(ctl[ctl.index("-D") + 1], "postmaster.pid")) as f:
            top = int(f.readline())
    except (OSError, ValueError, IndexError):
        return None
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == top or int(fields[1]) == top:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=1000000)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL, a throwaway cluster (scripts/pgtest.sh)")
    ap.add_argument("--database", help="PostgreSQL: the libpq URI of a cluster to use")
    a = ap.parse_args()
    if a.database:
        os.environ["CONSENTD_TEST_DATABASE"] = a.database
        os.environ.setdefault("CONSENTD_TEST_PG_ADMIN", a.database)
    elif a.pg and not os.environ.get("CONSENTD_TEST_DATABASE"):
        pgtest = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "pgtest.sh")
        os.execvp("bash", ["bash", pgtest, sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    backend = "PostgreSQL" if os.environ.get("CONSENTD_TEST_DATABASE") else "SQLite"
    n = 300 if a.smoke else a.n
    harness.ARGS = a
    srv = harness.Server()
    try:
        if os.cpu_count() and os.cpu_count() >= 2:
            os.sched_setaffinity(srv.proc.pid, {0})
            os.sched_setaffinity(0, {1})
        consent = ',"consents":[{"purpose":"marketing","channel":"email","status":"granted"}]'
        body = "".join('{"email":"c%d@example.org","collected_for":["marketing"]%s}\n'
                       % (i, consent if i % 2 == 0 else "") for i in range(n)).encode()
        base = rss_kb(srv.proc.pid)
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(srv.proc.pid))
                time.sleep(0.05)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        c0 = cpu_s(srv.proc.pid)
        p0 = pg_cpu_s()
        th0 = thread_cpu_s(srv.proc.pid)
        t0 = time.time()
        st, hdrs, data = srv.raw("POST", "/v1/contacts/import", body=body,
                                 headers={"Authorization": f"Bearer {srv.tokens['admin']}",
                                          "Content-Type": "application/x-ndjson"},
                                 client=harness.Client("127.0.0.1", srv.port, srv.cafile, timeout=3600))
        dt = time.time() - t0
        cpu = cpu_s(srv.proc.pid) - c0
        p1 = pg_cpu_s()
        th1 = thread_cpu_s(srv.proc.pid)
        # The busiest thread (the writer, or the request's thread) bounds
        # the rate when each thread has a core of its own; on the shared
        # machine the wall time mostly measures the other engineers' load.
        busiest = max(((th1[t][1] - th0.get(t, ("", 0.0))[1], th1[t][0]) for t in th1), default=(0.0, "?"))
        stop.set()
        th.join()
        summary = json.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])["summary"]
        if st != 200 or summary["created"] != n or summary["lines"] != n:
            print(f"bench_import: status {st}, summary {summary}: not every contact was created",
                  file=sys.stderr)
            return 1
        rate = n / dt
        print(f"import ({backend}): {n:,} contacts (half with a consent) in {dt:.2f} s = {rate:,.0f} contacts/s "
              f"(goal >= {GOAL:,}); server CPU {cpu:.2f} s = {cpu / n * 1e6:.1f} us/contact, "
              f"busiest thread {busiest[0] / n * 1e6:.1f} us/contact "
              f"(= {n / busiest[0] if busiest[0] else 0:,.0f} contacts/s on an idle core); RSS {base / 1024:.1f} MiB -> peak {peak[0] / 1024:.1f} MiB"
              + (f"; PostgreSQL CPU {p1 - p0:.2f} s = {(p1 - p0) / n * 1e6:.1f} us/contact" if p0 is not None else ""))
        return 0
    finally:
        srv.close()


if __name__ == "__main__":
    sys.exit(main())
