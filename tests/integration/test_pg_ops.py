"""
Operating consentd as a fleet (issue 12): data folders whose keys are not
the deployment's are refused, the database pool is configured within bounds,
the log can be JSON lines without personal data, and a COMMIT whose reply
was lost is answered from what the database holds.

Runs on both backends; the scenarios that need several folders on one
database, or PostgreSQL's connection, report SKIP on SQLite.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, cli, needs_postgresql, pg_admin, psql_rows, run  # noqa: E402


def copy_of(first, name, **kw):
    """A further instance: a copy of first's folder (keys included)."""
    data = os.path.join(first.tmp, name)
    shutil.copytree(first.data, data)
    s = Server(roles=(), start=False, data=data, database=first.pg, **kw)
    s.tokens = first.tokens
    return s


def edit_conf(data, **changes):
    path = os.path.join(data, "consentd.conf")
    with open(path) as f:
        conf = json.load(f)
    conf.update(changes)
    with open(path, "w") as f:
        json.dump(conf, f)


def swap_key(data, other, name):
    """Replaces keys/NAME in data by other's (mode kept 0600)."""
    dst = os.path.join(data, "keys", name)
    shutil.copyfile(os.path.join(other, "keys", name), dst)
    os.chmod(dst, 0o600)


# ---- key check values -------------------------------------------------------

def test_a_second_folder_with_other_keys_is_refused_and_a_copy_of_the_first_is_accepted():
    first = Server(start=False)
    try:
        if first.pg:
            # init of a new folder against the existing schema: new keys.
            other = os.path.join(first.tmp, "other")
            rc, _, err = cli("init", "--data", other, "--listen", "127.0.0.1:0", "--database", first.pg,
                             check=False)
            assert rc == 4, (rc, err)
            assert "does not match the database" in err and "copy of an existing instance" in err, err
        # A copy of the first folder is a valid further instance.
        good = copy_of(first, "copy")
        good.start()
        st, _ = good.call("POST", "/v1/contacts", token="admin",
                          json={"email": "kcv@example.org", "collected_for": ["service"]})
        assert st == 201, st
        good.stop()
        # A copy whose index key (or signing key) is another deployment's is
        # refused at start, naming the key, and changes nothing.
        stranger = Server(roles=(), start=False)
        for key, label in (("index.key", "index"), ("audit-signing.pem", "audit-signing"),
                           ("master-v1.key", "master-v1")):
            bad = copy_of(first, "bad-" + label)
            swap_key(bad.data, stranger.data, key)
            rc = bad.start(expect_fail=True)
            assert rc == 4, (key, rc, bad.output)
            assert f"the key {label} in" in bad.output and "does not match the database" in bad.output, \
                bad.output
        stranger.close()
        # The good copy still starts: the refusals recorded nothing.
        good.start()
        good.stop()
    finally:
        first.stop()
        shutil.rmtree(first.tmp, ignore_errors=True)


def test_keys_rotate_records_the_new_version_and_an_instance_without_it_is_refused():
    a = Server()
    try:
        a.create_contact(email="rotated@example.org")
        a.stop()
        _, out, _ = cli("keys", "rotate", "--data", a.data)
        assert "1 -> 2" in out, out
        a.start()  # its own folder has version 2: accepted
        a.stop()
        if not a.pg:
            return  # SQLite: one folder, one database
        # Another instance's folder without the new version (copied after the
        # rotation, so its audit anchor is current, minus the new key file).
        b = copy_of(a, "b")
        keys = os.path.join(b.data, "keys")
        os.unlink(os.path.join(keys, "master-v2.key"))
        os.rename(os.path.join(keys, "master-v1.key.retired"), os.path.join(keys, "master-v1.key"))
        rc = b.start(expect_fail=True)
        assert rc == 4, (rc, b.output)
        assert "master key version 2" in b.output and "master-v2.key" in b.output, b.output
        # The operator copies the new key file, as docs/operations.md says.
        swap_key(b.data, a.data, "master-v2.key")
        b.start()
        st, _ = b.call("GET", "/v1/contacts?limit=1", token="admin")
        b.stop()
        rows = psql_rows(a.pg, "SELECT name FROM key_check ORDER BY name")
        assert [r["name"] for r in rows] == ["audit-signing", "index", "master-v1", "master-v2"], rows
    finally:
        a.close()


# ---- the pool ----------------------------------------------------------------

def test_an_out_of_range_database_pool_is_refused_and_one_in_range_serves():
    srv = Server(start=False)
    try:
        for bad in (1, 257, "16", 2.5, True):
            edit_conf(srv.data, database_pool=bad)
            rc = srv.start(expect_fail=True)
            assert rc == 3, (bad, rc, srv.output)
            assert "database_pool must be an integer 2..256" in srv.output, srv.output
        edit_conf(srv.data, database_pool=3)
        srv.start()
        for _ in range(5):
            st, _ = srv.call("POST", "/v1/contacts", token="admin",
                             json={"email": f"pool{_}@example.org", "collected_for": ["service"]})
            assert st == 201, st
    finally:
        srv.close()


# ---- JSON log lines -----------------------------------------------------------

EMAIL = "json.log.person@example.org"
PHONE = "+44 20 7946 0999"


def test_the_json_log_is_one_object_a_line_with_the_request_id_and_no_personal_data():
    srv = Server(start=False)
    try:
        edit_conf(srv.data, log_format="json")
        srv.start()
        rid = "json-log-" + os.urandom(4).hex()
        st, body = srv.call("POST", "/v1/contacts", token="admin", headers={"X-Request-Id": rid},
                            json={"email": EMAIL, "phone": PHONE, "collected_for": ["service", "marketing"]})
        assert st == 201, body
        cid = body["id"]
        srv.set_consent(cid, "marketing", "email", "granted")
        srv.check("marketing", "email", email=EMAIL)
        # A request that fails and logs (an unknown token) and one refused.
        srv.call("GET", "/v1/contacts", token="not-a-token")
        srv.call("POST", "/v1/consent/check", token="marketing", json={"email": EMAIL})
        log = srv.stop()
        lines = [line for line in log.splitlines() if line.strip()]
        assert len(lines) >= 5, log
        objs = []
        for line in lines:
            o = json.loads(line)  # every line is one JSON object
            assert isinstance(o, dict), line
            assert set(o) >= {"time", "level", "message"}, o
            assert o["time"].endswith("Z") and "T" in o["time"], o
            assert o["level"] in ("info", "warning", "error", "critical"), o
            objs.append(o)
        mine = [o for o in objs if o.get("request_id") == rid]
        assert mine and mine[0]["status"] == 201 and mine[0]["method"] == "POST", mine
        assert any("serving" in o["message"] for o in objs), objs
        low = log.lower()
        for value in (EMAIL, PHONE, "json.log.person", "7946 0999", "79460999"):
            assert value.lower() not in low, value
    finally:
        srv.close()


def test_the_text_log_stays_the_default():
    srv = Server()
    out = srv.stop()
    assert "consentd: serving" in out and not out.lstrip().startswith("{"), out
    srv.close()


def test_an_unknown_log_format_is_refused():
    srv = Server(start=False)
    try:
        edit_conf(srv.data, log_format="xml")
        rc = srv.start(expect_fail=True)
        assert rc == 3 and 'log_format must be "text" or "json"' in srv.output, (rc, srv.output)
    finally:
        srv.close()


# ---- least privilege ---------------------------------------------------------

# The service role of docs/operations.md ("Several instances"): everything on
# the data tables, only SELECT and INSERT on the audit trail and its
# checkpoints and the key check values, nothing on the schema itself.
SERVICE_GRANTS = """
GRANT CONNECT ON DATABASE {db} TO consentd_app;
GRANT USAGE ON SCHEMA public TO consentd_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO consentd_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit, audit_checkpoint, key_check, consentd_schema FROM consentd_app;
REVOKE INSERT ON consentd_schema FROM consentd_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO consentd_app;
"""


def psql(uri, sql):
    import subprocess
    return subprocess.run(["psql", "-qX", "-v", "ON_ERROR_STOP=1", uri, "-c", sql],
                          capture_output=True, text=True, timeout=60)


def test_the_service_role_serves_but_cannot_rewrite_the_audit_trail():
    if not pg_admin():
        needs_postgresql()
    owner = Server(start=False)  # init ran as the owner: the schema exists
    try:
        db = owner.pg.rsplit("/", 1)[1]
        psql(pg_admin(), "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'consentd_app') "
                         "THEN CREATE ROLE consentd_app LOGIN; END IF; END$$")
        r = psql(owner.pg, SERVICE_GRANTS.format(db=db))
        assert r.returncode == 0, r.stderr
        user, host = owner.pg.split("://", 1)[1].split("@", 1)
        app_uri = owner.pg.replace(f"://{user}@", "://consentd_app@")
        edit_conf(owner.data, database=app_uri)
        owner.start()
        cid = owner.create_contact(email="least.privilege@example.org")
        owner.set_consent(cid, "marketing", "email", "granted")
        assert owner.check("marketing", "email", contact_id=cid)["allowed"] is True
        for sql in ("UPDATE audit SET reason = 'x' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1",
                    "TRUNCATE audit", "DELETE FROM audit_checkpoint", "UPDATE key_check SET kcv = kcv",
                    "DROP TRIGGER audit_no_update ON audit", "ALTER TABLE audit DISABLE TRIGGER ALL"):
            r = psql(app_uri, sql)
            assert r.returncode != 0 and ("permission denied" in r.stderr or "must be owner" in r.stderr), \
                (sql, r.stderr)
        owner.stop()
        rc, out, err = cli("audit", "verify", "--data", owner.data, check=False)
        assert rc == 0, (rc, out, err)
    finally:
        owner.close()


# ---- a COMMIT whose reply is lost ---------------------------------------------

def faulty(srv_env_file):
    return {"CONSENTD_TEST_FAULTS": "1", "CONSENTD_TEST_PG_FAULT_FILE": srv_env_file}


def test_a_commit_whose_reply_is_lost_is_answered_from_what_the_database_holds():
    if not pg_admin():
        needs_postgresql()
    first = Server(start=False)
    fault = os.path.join(first.tmp, "pg-fault")
    first.env.update(faulty(fault))
    try:
        first.start()
        # The COMMIT took effect, then the connection died before its reply:
        # the instance reconnects, finds the batch's last entry and answers.
        with open(fault, "w") as f:
            f.write("commit-reply-lost\n")
        rid = "lost-reply-" + os.urandom(3).hex()
        st, body = first.call("POST", "/v1/contacts", token="admin", headers={"X-Request-Id": rid},
                              json={"email": "lost.reply@example.org", "collected_for": ["service"]})
        assert not os.path.exists(fault), "the fault did not fire"
        assert st == 201, (st, body)
        st, got = first.call("GET", f"/v1/contacts/{body['id']}?purpose=service", token="admin")
        assert st == 200, (st, got)
        rows = psql_rows(first.pg, f"SELECT count(*) AS n FROM audit WHERE request_id = '{rid}'")
        assert rows[0]["n"] == 1, rows
        # The connection died before COMMIT reached the server: nothing was
        # saved, and the client is told 503 (it may retry).
        with open(fault, "w") as f:
            f.write("commit-lost\n")
        rid2 = "lost-commit-" + os.urandom(3).hex()
        st, body = first.call("POST", "/v1/contacts", token="admin", headers={"X-Request-Id": rid2},
                              json={"email": "lost.commit@example.org", "collected_for": ["service"]})
        assert not os.path.exists(fault), "the fault did not fire"
        assert st == 503, (st, body)
        rows = psql_rows(first.pg, f"SELECT count(*) AS n FROM audit WHERE request_id = '{rid2}'")
        assert rows[0]["n"] == 0, rows
        # The retry is acknowledged once; the instance goes on, chain intact.
        st, body = first.call("POST", "/v1/contacts", token="admin",
                              json={"email": "lost.commit@example.org", "collected_for": ["service"]})
        assert st == 201, (st, body)
        first.stop()
        rc, out, err = cli("audit", "verify", "--data", first.data, check=False)
        assert rc == 0, (rc, out, err)
    finally:
        first.close()


def test_checks_stay_exact_when_their_prepared_lookups_lose_the_database_session():
    """The check's lookups are prepared once per database session (pg.c).
    A withdrawal is seen by the next check, and when the server ends every
    session of the instance, each connection prepares them again: checks
    answer as before, never "prepared statement does not exist"."""
    if not pg_admin():
        needs_postgresql()
    srv = Server()
    try:
        cid = srv.create_contact(email="prepared.check@example.org", collected_for=["marketing"])
        srv.set_consent(cid, "marketing", "email", "granted")
        def check():
            return srv.call("POST", "/v1/consent/check", token="marketing",
                            json={"contact_id": cid, "purpose": "marketing", "channel": "email"})
        for _ in range(20):  # every reader connection prepares and reuses them
            st, body = check()
            assert st == 200 and body["allowed"] is True, (st, body)
        srv.set_consent(cid, "marketing", "email", "withdrawn")
        st, body = check()
        assert st == 200 and body["allowed"] is False, (st, body)
        dbname = srv.pg.rsplit("/", 1)[1]
        psql_rows(pg_admin(), "SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity "
                  f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
        # A pooled connection learns that its session is gone when it is
        # next used: that request fails closed (503) and the connection is
        # opened again, so each fails at most once, whenever it comes up.
        answers, run_of_200 = [], 0
        while run_of_200 < 40 and len(answers) < 400:
            st, body = check()
            answers.append(st)
            assert st in (200, 503), (st, body)
            if st == 200:
                assert body["allowed"] is False, body
            run_of_200 = run_of_200 + 1 if st == 200 else 0
        assert run_of_200 == 40, answers
        assert answers.count(503) <= 16, answers  # database_pool, the default
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
