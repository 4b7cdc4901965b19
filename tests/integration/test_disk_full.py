"""Full disk: the data directory lives on a 4 MiB tmpfs. A filler file takes
the free space, API writes continue until they fail, and then:

- writes and audited reads fail closed: 503 problem+json that names no
  personal value, and every 200 that did leave has its audit entry;
- once space returns (the filler is deleted) the same server, without a
  restart, serves writes and reads again;
- `consentd audit verify` passes and the data written before is intact.

Needs root and mount(2) (CI and the dev container have both); without them
the scenario is reported as skipped (to ctest too), never as passed.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Server, Skip, assert_problem, cli, run  # noqa: E402

SIZE = "4m"
NOTE = "n" * 3000  # 3 KB per write keeps the fill short


def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", path],
                       capture_output=True, text=True)
    return p.returncode == 0, p.stderr.strip()


def fill_disk(path, leave=256 * 1024):
    """Writes a filler file until ENOSPC, then gives `leave` bytes back so
    the API writes fill the rest; returns its path."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, os.path.getsize(filler) - leave))
    return filler


def audited(srv, rid):
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)
    n = con.execute("SELECT count(*) FROM audit WHERE request_id=?", (rid,)).fetchone()[0]
    con.close()
    return n > 0


def call(srv, method, path, rid, token="admin", json=None):
    return srv.call(method, path, token=token, json=json, headers={"X-Request-Id": rid})


def test_disk_full_fails_closed_and_recovers_without_restart():
    base = tempfile.mkdtemp(prefix="consentd-full-")
    mnt = os.path.join(base, "mnt")
    ok, why = mount_tmpfs(mnt)
    if not ok:
        shutil.rmtree(base, ignore_errors=True)
        raise Skip(f"cannot mount a tmpfs ({why})")
    srv = None
    try:
        data = os.path.join(mnt, "data")
        cli("init", "--data", data, "--listen", "127.0.0.1:0")
        srv = Server(data=data)
        before = {}
        for i in range(5):
            cid = srv.create_contact(email=f"kept{i}@example.org", name=f"Kept Person {i}",
                                     collected_for=["service", "marketing"])
            srv.set_consent(cid, "marketing", "email", "granted")
            before[cid] = f"Kept Person {i}"
        filler = fill_disk(mnt)

        # Write until the disk refuses; the first refusal must be a clean 503.
        refused = None
        for i in range(2000):
            st, body = call(srv, "POST", "/v1/contacts", f"fill-{i}",
                            json={"email": f"fill{i}@example.org", "name": f"Filler Secret {i}",
                                  "notes": NOTE, "collected_for": ["service"]})
            if st != 201:
                refused = (st, body)
                break
        assert refused is not None, "the disk never filled"
        assert_problem(*refused, 503, "unavailable")

        # While full: every request either fails closed or was audited.
        cid0 = next(iter(before))
        attempts = [
            ("POST", "/v1/contacts", {"email": "late@example.org", "name": "Late Secret",
                                      "notes": NOTE, "collected_for": ["service"]}),
            ("PUT", f"/v1/contacts/{cid0}/consents/marketing", {"channel": "email", "status": "withdrawn"}),
            ("GET", f"/v1/contacts/{cid0}?purpose=service", None),
            ("GET", f"/v1/contacts/{cid0}/consents", None),
        ]
        failed_closed = 0
        for round_ in range(5):
            for n, (method, path, payload) in enumerate(attempts):
                rid = f"full-{round_}-{n}"
                st, body = call(srv, method, path, rid, json=payload)
                if st == 503:
                    assert_problem(st, body, 503, "unavailable")
                    text = str(body)
                    assert "Kept Person" not in text and "Secret" not in text, body
                    failed_closed += 1
                else:
                    assert st in (200, 201), (method, path, st, body)
                    assert audited(srv, rid), f"{method} {path} answered {st} without an audit entry"
        assert failed_closed > 0, "nothing failed while the disk was full"
        print(f"  disk full after {i} writes; {failed_closed} of {5 * len(attempts)} requests "
              f"failed closed while full", flush=True)
        st, _ = srv.call("GET", "/healthz")
        assert st == 200

        # Space returns: the same process serves again, within seconds.
        os.unlink(filler)
        deadline = time.time() + 15
        while True:
            st, body = call(srv, "POST", "/v1/contacts", "after-1",
                            json={"email": "after@example.org", "name": "After",
                                  "collected_for": ["service"]})
            if st == 201 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert st == 201, (st, body)
        st, body = call(srv, "GET", f"/v1/contacts/{cid0}?purpose=service", "after-2")
        assert st == 200 and body["fields"]["name"] == before[cid0], body
        assert audited(srv, "after-2")
        for cid, name in before.items():
            st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
            assert st == 200 and body["fields"]["name"] == name, body
            st, body = srv.call("GET", f"/v1/contacts/{cid}/consents", token="admin")
            assert st == 200 and body["consents"], body
        code, out, err = cli("audit", "verify", "--data", data, check=False)
        assert code == 0, (code, out, err)
        proc = srv.proc
        srv.client.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        out = srv.stop()
        assert rc == 0 and "Sanitizer" not in out, (rc, out[-3000:])
        code, out, err = cli("audit", "verify", "--data", data, check=False)
        assert code == 0, (code, out, err)
    finally:
        if srv is not None:
            srv.stop(signal.SIGKILL if srv.proc else signal.SIGTERM)
            shutil.rmtree(srv.tmp, ignore_errors=True)
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    run(globals())
