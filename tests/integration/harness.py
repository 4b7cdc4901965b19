"""
harness: starts the real consentd binary over TLS on loopback with a
temporary data directory, and talks to it with the standard library only.

A test file defines functions named test_* taking a Server (or use
`run(globals())` and create servers yourself); each is one user scenario.
The runner prints one line per test (PASS, FAIL or SKIP) and a closing
"N passed, N failed, N skipped" line. Its exit status is what ctest reads:
0 when every selected test passed or skipped and at least one passed; 1 on
any failure, and when -k selects no test at all; SKIP_EXIT (77, the ctest
SKIP_RETURN_CODE set in tests/CMakeLists.txt) when every selected test
skipped. A test that cannot run raises Skip("why"); with CONSENTD_NO_SKIP=1
in the environment (CI's main run) a skip counts as a failure instead.
A scenario of the other backend raises OtherBackend (needs_postgresql()):
it is no missing prerequisite, since CI runs it in integration.pg
(tests/integration/run-pg.sh lists its file), so it stays a SKIP there.

The harness refuses to run under `python3 -O`, which strips every `assert`
and would turn each test into one that cannot fail. check(cond, message)
is the same test as an assert, kept under -O too.

    from harness import Server, run
    def test_admin_creates_a_contact(srv):
        st, body = srv.call("POST", "/v1/contacts", token=srv.tokens["admin"], json={...})
        assert st == 201, body
    if __name__ == "__main__":
        run(globals())
"""
import argparse
import http.client
import json as jsonlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ARGS = None
ROLES = ("admin", "support", "marketing", "auditor")
# The exit status that tells ctest "skipped" (SKIP_RETURN_CODE in
# tests/CMakeLists.txt); 77 is the automake convention.
SKIP_EXIT = 77


class Skip(Exception):
    """Raised by a test whose prerequisite is missing: reported as SKIP with
    the reason, never as PASS."""


class OtherBackend(Skip):
    """Raised by a scenario that runs on the PostgreSQL backend only, when
    this run is on SQLite: a SKIP even under CONSENTD_NO_SKIP=1, because
    integration.pg runs the same file on PostgreSQL (its file must be in
    run-pg.sh's list; test_harness.py checks that)."""


def needs_postgresql():
    """Raises OtherBackend unless this run is on PostgreSQL."""
    if not os.environ.get("CONSENTD_TEST_DATABASE"):
        raise OtherBackend("needs the PostgreSQL backend (run through scripts/pgtest.sh)")


def check(cond, message="check failed"):
    """An assert that `python3 -O` cannot strip."""
    if not cond:
        raise AssertionError(message)


def refuse_optimized():
    """Every scenario is written with `assert`; under -O (or PYTHONOPTIMIZE)
    they all vanish and every test passes, so the harness does not run."""
    if sys.flags.optimize or not __debug__:
        print("FAIL: python runs with -O / PYTHONOPTIMIZE, which strips the tests' asserts; "
              "run without it", flush=True)
        sys.exit(1)


refuse_optimized()


def binary():
    return ARGS.binary


def sanitized():
    """True when the binary under test is built with AddressSanitizer, whose
    quarantine keeps freed memory: RSS then says nothing about our bounds."""
    try:
        out = subprocess.run(["ldd", binary()], capture_output=True, text=True, timeout=10).stdout
        if "libasan" in out:  # gcc links the runtime dynamically
            return True
        with open(binary(), "rb") as f:  # clang links it in
            return b"__asan_init" in f.read()
    except OSError:
        return False


def cli(*args, check=True, input=None, env=None):
    """Runs `consentd ARGS...`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([binary(), *args], capture_output=True, text=True, input=input,
                       env=env, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"consentd {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p.returncode, p.stdout, p.stderr


def pg_admin():
    """The maintenance database of the PostgreSQL cluster the suite runs
    against (scripts/pgtest.sh sets it), or None: the SQLite backend."""
    if not os.environ.get("CONSENTD_TEST_DATABASE"):
        return None
    return os.environ.get("CONSENTD_TEST_PG_ADMIN") or os.environ["CONSENTD_TEST_DATABASE"]


def pg_new_database():
    """A fresh, empty PostgreSQL database of its own for one test server:
    its libpq URI. Servers of one test share it by passing it on (several
    instances); the throwaway cluster takes every database with it."""
    name = "consentd_it_" + os.urandom(6).hex()
    subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", pg_admin(), "-c",
                    f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
    base = os.environ["CONSENTD_TEST_DATABASE"]
    return base[:base.rindex("/") + 1] + name


def _skip_sqlite_reads_on_postgresql():
    """On the PostgreSQL backend there is no SQLite file: a scenario that
    inspects it directly is reported SKIP with that reason, not FAIL."""
    import sqlite3
    real = sqlite3.connect

    def connect(target, *a, **kw):
        path = str(target)
        path = path[5:].split("?", 1)[0] if path.startswith("file:") else path
        if path.endswith("consentd.db") and not os.path.exists(path):
            raise Skip("reads the SQLite database file, which the PostgreSQL backend has not")
        return real(target, *a, **kw)
    sqlite3.connect = connect


if os.environ.get("CONSENTD_TEST_DATABASE"):
    _skip_sqlite_reads_on_postgresql()


def psql_rows(uri, sql):
    """Rows of sql as dicts (psql, one JSON object a line)."""
    out = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", uri, "-c",
                          f"SELECT row_to_json(q) FROM ({sql}) AS q"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [jsonlib.loads(line) for line in out.splitlines() if line.strip()]


class Client:
    """One keep-alive TLS connection, verified against the dev certificate."""

    def __init__(self, host, port, cafile, timeout=30):
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                timeout=self.timeout)
        self.conn.connect()
        return self.conn

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.connect()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                http.client.CannotSendRequest, ssl.SSLEOFError):
            self.close()
            self.connect()
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    """A consentd data directory and (optionally) a running server."""

    def __init__(self, roles=ROLES, start=True, env=None, data=None, database=None):
        self.tmp = tempfile.mkdtemp(prefix="consentd-it-")
        self.data = data or os.path.join(self.tmp, "data")
        # CONSENTD_TEST_DATABASE (scripts/pgtest.sh): each server gets a
        # PostgreSQL database of its own, or the one it is given.
        self.pg = database or (pg_new_database() if pg_admin() and data is None else None)
        self.proc = None
        self.port = None
        self.output = ""
        self.env = dict(os.environ, **(env or {}))
        self._out = []
        if data is None:
            cli("init", "--data", self.data, "--listen", "127.0.0.1:0",
                *(("--database", self.pg) if self.pg else ()))
        self.tokens = {}
        for role in roles:
            self.tokens[role] = self.token(role, f"{role}-1")
        self.client = None
        if start:
            self.start()

    @property
    def cafile(self):
        return os.path.join(self.data, "tls", "cert.pem")

    @property
    def db(self):
        return os.path.join(self.data, "consentd.db")

    def token(self, role, name):
        _, out, _ = cli("token", "create", "--data", self.data, "--role", role, "--name", name)
        return out.strip()

    def start(self, expect_fail=False, extra=(), wait_ready=True):
        """Starts `consentd serve`. With wait_ready=False it returns once the
        server answers /healthz (a server whose audit alarm is raised is live
        but never ready)."""
        self._out = []
        self.proc = subprocess.Popen([binary(), "serve", "--data", self.data, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=self.env)
        port_seen = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self._out.append(line)
                m = re.search(r"serving .* on https://[^ ]*:(\d+) ", line)
                if m:
                    self.port = int(m.group(1))
                    port_seen.set()
            port_seen.set()

        threading.Thread(target=pump, daemon=True).start()
        port_seen.wait(20)
        if expect_fail:
            self.proc.wait(20)
            time.sleep(0.1)
            self.output = "".join(self._out)
            return self.proc.returncode
        if self.port is None:
            raise AssertionError("server did not start:\n" + "".join(self._out))
        self.client = Client("127.0.0.1", self.port, self.cafile)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                st, _, _ = self.client.request("GET", "/readyz" if wait_ready else "/healthz")
                if st == 200:
                    return 0
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server never became ready:\n" + "".join(self._out))

    def new_client(self):
        return Client("127.0.0.1", self.port, self.cafile)

    def stop(self, sig=signal.SIGTERM):
        if self.client:
            self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        time.sleep(0.05)
        self.output = "".join(self._out)
        self.proc = None
        return self.output

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def raw(self, method, path, body=None, headers=None, client=None):
        """(status, headers, bytes)"""
        return (client or self.client).request(method, path, body=body, headers=headers)

    def call(self, method, path, token=None, json=None, body=None, headers=None,
             content_type=None, client=None):
        """(status, parsed JSON or text). token is a role name or a raw token."""
        h = dict(headers or {})
        if token is not None:
            tok = self.tokens.get(token, token)
            h["Authorization"] = f"Bearer {tok}"
        if json is not None:
            body = jsonlib.dumps(json)
            h.setdefault("Content-Type", "application/json")
        if content_type is not None:
            h["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        st, hdrs, data = self.raw(method, path, body=body, headers=h, client=client)
        ctype = hdrs.get("content-type", "")
        if "json" in ctype and "ndjson" not in ctype:
            try:
                return st, jsonlib.loads(data)
            except ValueError:
                return st, data.decode(errors="replace")
        return st, data.decode(errors="replace")

    # Conveniences used by many scenarios.

    def create_contact(self, token="admin", **fields):
        fields.setdefault("collected_for", ["service", "marketing"])
        st, body = self.call("POST", "/v1/contacts", token=token, json=fields)
        assert st == 201, (st, body)
        return body["id"]

    def set_consent(self, cid, purpose, channel, status, token="admin", **extra):
        payload = {"channel": channel, "status": status, "source": "test", **extra}
        if channel is None:
            del payload["channel"]
        st, body = self.call("PUT", f"/v1/contacts/{cid}/consents/{purpose}", token=token,
                             json=payload)
        assert st == 200, (st, body)
        return body

    def check(self, purpose, channel, token="marketing", **who):
        st, body = self.call("POST", "/v1/consent/check", token=token,
                             json={**who, "purpose": purpose, "channel": channel})
        assert st == 200, (st, body)
        return body

    def mailed(self, link_id, timeout=10.0):
        """The message consentd wrote to the development mail folder
        (DIR/mail-outbox/<id>.eml) for link_id, as an email.message, once
        it is there (the mail worker sends after the commit)."""
        import email
        import email.policy
        folder = os.path.join(self.data, "mail-outbox")
        deadline = time.monotonic() + timeout
        while True:
            names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            for name in names:
                if not name.endswith(".eml"):
                    continue
                with open(os.path.join(folder, name), "rb") as f:
                    msg = email.message_from_binary_file(f, policy=email.policy.default)
                if msg["X-Consentd-Link-Id"] == link_id:
                    return msg
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail for link {link_id} in {folder}: {names}")
            time.sleep(0.05)

    def mailed_token(self, link_id, timeout=10.0):
        """The preference-page token in the mail sent for link_id."""
        msg = self.mailed(link_id, timeout)
        body = msg.get_body(preferencelist=("plain",)).get_content()
        m = re.search(r"/p/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", body)
        assert m, body
        return m.group(1)

    def manage_link(self, cid, token="admin", **body):
        """Asks for a manage link for cid (202: consentd mails it) and
        returns (answer, token read from the mail)."""
        st, out = self.call("POST", f"/v1/contacts/{cid}/preference-link", token=token,
                            json={"capability": "manage", **body})
        assert st == 202, (st, out)
        assert "url" not in out, out
        return out, self.mailed_token(out["link_id"])

    def audit_rows(self, where="1=1", params=()):
        """Reads the audit table directly (read-only)."""
        if self.pg:
            # Test-controlled values only: each ? becomes a quoted literal.
            for p in params:
                lit = str(p) if isinstance(p, int) else "'" + str(p).replace("'", "''") + "'"
                where = where.replace("?", lit, 1)
            return psql_rows(self.pg, f"SELECT * FROM audit WHERE {where} ORDER BY seq")
        import sqlite3
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute(f"SELECT * FROM audit WHERE {where} ORDER BY seq", params)]
        con.close()
        return rows


def contains_value(haystack, value):
    """True when value occurs in haystack (str or bytes), case-insensitively.
    An all-digit value (an income) counts only where it is not part of a
    longer run of hex digits, so it is not "found" inside a hash or a
    microsecond timestamp by chance, while "income":98765 still is."""
    import re
    if isinstance(haystack, bytes):
        haystack = haystack.decode("latin-1")
    haystack = haystack.lower()
    value = value.lower()
    if value.isdigit():
        return re.search(r"(?<![0-9a-f])" + value + r"(?![0-9a-f])", haystack) is not None
    return value in haystack


def assert_problem(st, body, status, type_suffix=None):
    assert st == status, (st, body)
    assert isinstance(body, dict), body
    assert body.get("status") == status, body
    assert body.get("type", "").startswith("https://consentd.dev/problems/"), body
    if type_suffix:
        assert body["type"].endswith("/" + type_suffix), body


def fresh_server(**kw):
    return Server(**kw)


def run(namespace):
    """Runs every test_* function in namespace; each gets a fresh Server
    unless it takes no arguments."""
    global ARGS
    refuse_optimized()
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", default=None, help="run only tests whose name contains this")
    ARGS = ap.parse_args()
    tests = [(n, f) for n, f in sorted(namespace.items()) if n.startswith("test_") and callable(f)]
    if ARGS.k:
        tests = [(n, f) for n, f in tests if ARGS.k in n]
    if not tests:
        # A filter with a typo must not look like a green run.
        print(f"FAIL: no test selected (-k {ARGS.k!r})" if ARGS.k else "FAIL: no test_* function found",
              flush=True)
        print("0 passed, 1 failed, 0 skipped")
        sys.exit(1)
    strict = os.environ.get("CONSENTD_NO_SKIP") == "1"
    passed = failed = skipped = 0
    for name, fn in tests:
        t0 = time.time()
        srv = None
        try:
            if fn.__code__.co_argcount == 1:
                srv = Server()
                result = fn(srv)
            else:
                result = fn()
            # A generator (a stray yield) or coroutine would return here
            # without running its body.
            check(result is None, f"{name} returned {result!r} instead of running to the end")
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f}s)", flush=True)
        except Skip as why:
            if strict and not isinstance(why, OtherBackend):
                failed += 1
                print(f"FAIL {name}: skipped with CONSENTD_NO_SKIP=1: {why}", flush=True)
            else:
                skipped += 1
                print(f"SKIP {name}: {why}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name} ({time.time() - t0:.1f}s)", flush=True)
            traceback.print_exc()
            if srv is not None and srv.proc is not None:
                print("---- server output ----\n" + "".join(srv._out)[-4000:])
        finally:
            if srv is not None:
                srv.close()
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        sys.exit(1)
    sys.exit(0 if passed else SKIP_EXIT)
