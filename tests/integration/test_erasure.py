"""Erasure leaves no recoverable copy, and the server keeps keys out of core
dumps. One scenario each, as an admin, a customer or an operator does it.

The erasure scenarios read the contact's wrapped data key and every sealed
value (fields and consent evidence) straight from the running server's
database before the erasure, then look for each blob's bytes in every file
of the data folder once the erasure is acknowledged: the database, its WAL
and SHM, and anything else there. With the master key backup, any one of
those blobs would give the erased person's data back."""
import json
import os
import re
import sqlite3
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import assert_problem, run  # noqa: E402

CAROL = {"email": "carol.erasable@example.org", "name": "Carol Erasable", "phone": "+44 20 7946 0555",
         "postal_address": "12 Shredding Lane, Wipeford", "birthday": "1980-02-29", "income": 71234,
         "health": "recurring quux syndrome", "family": "two children, one spouse",
         "notes": "prefers calls after six; " + "long note " * 200,
         "collected_for": ["service", "marketing"], "source": "erasure-test"}
EVIDENCE = {"form": "https://shop.example/erasable-signup", "ip": "198.51.100.23",
            "user_agent": "EraseMe/1.0"}


def ro(srv):
    return sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True)


def secrets_of(srv, cid):
    """The contact's wrapped key and sealed blobs, as stored right now."""
    con = ro(srv)
    blobs = [("wrapped_key", con.execute("SELECT wrapped_key FROM contact WHERE id = ?",
                                         (cid,)).fetchone()[0])]
    blobs += [(f"field {n}", v) for n, v in
              con.execute("SELECT name, value FROM contact_field WHERE contact_id = ?", (cid,))]
    blobs += [(f"consent evidence {p}/{c}", e) for p, c, e in
              con.execute("SELECT purpose, channel, evidence FROM consent WHERE contact_id = ?", (cid,))]
    blobs += [(f"consent history evidence {s}", e) for s, e in
              con.execute("SELECT seq, evidence FROM consent_event WHERE contact_id = ?", (cid,))]
    con.close()
    for what, b in blobs:
        assert isinstance(b, bytes) and len(b) >= 16, (what, b)
    return blobs


def busy_contact(srv, restart=False, **over):
    """A contact with every field class, consents with evidence, a change of
    mind (history) and an update, so copies of its pages are spread through
    the WAL and (with restart: a clean stop checkpoints the WAL into it) the
    database file. Returns its id and every blob it ever had, including the
    values the update replaced."""
    cid = srv.create_contact(**dict(CAROL, **over))
    srv.set_consent(cid, "marketing", "email", "granted", evidence=EVIDENCE)
    srv.set_consent(cid, "marketing", "email", "withdrawn", evidence=dict(EVIDENCE, ip="198.51.100.24"))
    blobs = secrets_of(srv, cid)
    if restart:
        # The key is rewrapped under a new master version while stopped:
        # the old wrap must go too.
        srv.stop()
        harness.cli("keys", "rotate", "--data", srv.data)
        srv.start()
    srv.set_consent(cid, "marketing", "email", "granted", evidence=dict(EVIDENCE, ip="198.51.100.25"))
    st, body = srv.call("PATCH", f"/v1/contacts/{cid}", token="admin",
                        json={"notes": "updated note " * 150, "income": 81234})
    assert st == 200, body
    now = secrets_of(srv, cid)
    return cid, now + [(f"earlier {what}", b) for what, b in blobs if (what, b) not in now]


def others(srv, n, tag):
    for i in range(n):
        srv.create_contact(email=f"other-{tag}-{i}@example.org", name=f"Other {i}",
                           notes="filler " * 80)


def leftovers(srv, blobs):
    """Every (blob, file) pair where a blob's bytes are still found."""
    found = []
    for root, _, files in os.walk(srv.data):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                data = fh.read()
            for what, b in blobs:
                # A 16-byte piece is enough to count: whoever holds it can
                # tell the value was there, and the GCM tag alone is 16.
                pieces = {b[i:i + 16] for i in range(0, len(b) - 15, 16)} | {b[-16:]}
                if any(p in data for p in pieces):
                    found.append((what, os.path.relpath(path, srv.data), os.path.getsize(path)))
    return found


def test_an_admin_erasure_leaves_no_copy_of_the_key_or_sealed_values_in_the_data_folder(srv):
    others(srv, 20, "a")
    cid, blobs = busy_contact(srv, restart=True)
    others(srv, 20, "b")
    assert len(blobs) >= 14, [w for w, _ in blobs]
    # The live WAL holds them now: this is what the erasure must purge.
    assert leftovers(srv, blobs), "the test found nothing before the erasure"
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    # On a loaded machine an old reader can outlast the purge's wait: then
    # the erasure is committed but answered 503 (docs/api.md), and a retry
    # answers 410 only once the purge is done. Either way it is acknowledged
    # only when nothing is left.
    for _ in range(20):
        if st != 503:
            break
        time.sleep(0.5)
        st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert (st == 200 and body["status"] == "erased") or st == 410, (st, body)
    # Acknowledged: nothing of it may remain, while the server still runs.
    found = leftovers(srv, blobs)
    assert found == [], found
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert_problem(st, body, 410)
    # And still nothing after a clean stop (the final checkpoint rewrites
    # pages) and a restart.
    srv.restart()
    found = leftovers(srv, blobs)
    assert found == [], found


def test_a_customer_erasure_from_the_preference_page_leaves_no_copy(srv):
    others(srv, 10, "c")
    cid, blobs = busy_contact(srv, email="dora.erasable@example.org", name="Dora Erasable")
    link, tok = srv.manage_link(cid)
    assert leftovers(srv, blobs)
    _, _, html = srv.raw("GET", f"/p/{tok}")

    def post(fields):
        return srv.raw("POST", f"/p/{tok}", body=urllib.parse.urlencode(fields).encode(),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})

    def csrf(page):
        return re.search(r'name="csrf" value="([^"]+)"', page.decode()).group(1)

    st, _, confirm = post({"csrf": csrf(html), "action": "erase_request"})
    assert st == 200, confirm
    st, _, done = post({"csrf": csrf(confirm), "action": "erase_confirm", "confirm": "yes"})
    assert st == 200 and b"erased" in done, done
    found = leftovers(srv, blobs)
    assert found == [], found


def test_an_erasure_while_a_reader_holds_an_old_snapshot_waits_or_fails_closed(srv):
    """A reader pinned on a snapshot from before the erasure keeps the old
    pages needed; the reply either waits for it to finish or is a 503 that
    claims nothing, and the purge completes once the reader is gone."""
    cid, blobs = busy_contact(srv, email="erin.erasable@example.org", name="Erin Erasable")
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True, isolation_level=None)
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM contact").fetchone()  # holds the snapshot
    t0 = time.time()
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    waited = time.time() - t0
    assert_problem(st, body, 503, "unavailable")
    assert "erased" in body.get("detail", ""), body
    assert waited < 10, waited
    con.execute("COMMIT")
    con.close()
    # The data itself is gone from the live database either way.
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert_problem(st, body, 410)
    # A retried erasure is acknowledged only once the purge is done.
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert st in (200, 410), body
    found = leftovers(srv, blobs)
    assert found == [], found


def test_an_unconfirmed_erasure_is_completed_by_the_next_start_after_a_crash(srv):
    cid, blobs = busy_contact(srv, email="fay.erasable@example.org", name="Fay Erasable")
    con = sqlite3.connect(f"file:{srv.db}?mode=ro", uri=True, isolation_level=None)
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM contact").fetchone()
    st, body = srv.call("DELETE", f"/v1/contacts/{cid}", token="admin")
    assert_problem(st, body, 503, "unavailable")
    con.execute("COMMIT")
    con.close()
    srv.kill9()
    assert leftovers(srv, blobs), "the WAL was purged after all; this test proves nothing"
    srv.start()
    found = leftovers(srv, blobs)
    assert found == [], found
    st, body = srv.call("GET", f"/v1/contacts/{cid}?purpose=service", token="admin")
    assert_problem(st, body, 410)


def core_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    raise AssertionError("no core limit line")


def uids(pid):
    """(the process's real uid, the owner of its /proc files). The kernel
    makes a process that is not dumpable look owned by root in /proc
    (proc(5), PR_SET_DUMPABLE), so the two differ exactly then."""
    with open(f"/proc/{pid}/status") as f:
        real = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    return real, os.stat(f"/proc/{pid}/status").st_uid


def start_unprivileged(srv):
    """Starts the server as a user other than root: a root process owns its
    /proc files either way, so only then does the owner tell. When the
    tests run as root, the data folder is handed to nobody and the binary
    is started through a wrapper that drops to it (same pid: exec)."""
    if os.getuid() != 0:
        srv.start()
        return
    nobody = 65534
    for root, dirs, files in os.walk(srv.tmp):
        for name in dirs + files:
            os.chown(os.path.join(root, name), nobody, nobody)
    os.chown(srv.tmp, nobody, nobody)
    wrapper = os.path.join(srv.tmp, "as-nobody")
    with open(wrapper, "w") as f:
        f.write(f"#!{sys.executable}\nimport os, sys\nos.setgroups([])\nos.setgid({nobody})\n"
                f"os.setuid({nobody})\nos.execv({harness.binary()!r}, sys.argv)\n")
    os.chmod(wrapper, 0o755)
    real = harness.ARGS.binary
    harness.ARGS.binary = wrapper
    try:
        srv.start()
    finally:
        harness.ARGS.binary = real


def set_conf(srv, **keys):
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        cfg = json.load(f)
    cfg.update(keys)
    with open(conf, "w") as f:
        json.dump(cfg, f)


def test_the_server_refuses_core_dumps_by_default(srv):
    srv.stop()
    start_unprivileged(srv)
    pid = srv.proc.pid
    assert core_limit(pid) == ["0", "0"], core_limit(pid)
    real, owner = uids(pid)
    assert real != 0 and owner == 0, ("the server process is dumpable", real, owner)
    st, _ = srv.call("GET", "/healthz")
    assert st == 200


def test_allow_core_dumps_in_the_config_turns_them_back_on_but_keeps_keys_out(srv):
    srv.stop()
    set_conf(srv, allow_core_dumps=True)
    start_unprivileged(srv)
    pid = srv.proc.pid
    real, owner = uids(pid)
    assert real == owner, ("allow_core_dumps did not make the server dumpable", real, owner)
    assert "allow_core_dumps is on" in "".join(srv._out)
    # The keyring's own anonymous, writable pages are marked "dd"
    # (MADV_DONTDUMP); the kernel's [vvar] pages always are, so they do not
    # count.
    keyring_like = []
    with open(f"/proc/{pid}/smaps") as f:
        head = None
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                head = line.split()
            elif line.startswith("VmFlags:"):
                flags = line.split()[1:]
                if len(head) == 5 and "dd" in flags and "wr" in flags:
                    keyring_like.append(head[0])
    assert keyring_like, "no anonymous writable mapping is excluded from core dumps"


def test_allow_core_dumps_must_be_a_boolean(srv):
    srv.stop()
    set_conf(srv, allow_core_dumps="yes")
    rc = srv.start(expect_fail=True)
    assert rc != 0 and "allow_core_dumps must be true or false" in srv.output, srv.output


if __name__ == "__main__":
    run(globals())
