"""The database setting picks the store backend: a file path is SQLite; a
PostgreSQL URI is the PostgreSQL backend (service/store/pg.c), never taken
for a file name. A server that cannot reach its PostgreSQL database does not
start (exit 6, unavailable) rather than serve without a store."""
import json
import os

from harness import Server, Skip, pg_admin, run


def set_database(srv, value):
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        cfg = json.load(f)
    cfg["database"] = value
    with open(conf, "w") as f:
        json.dump(cfg, f)


def test_operator_configures_an_unreachable_postgresql_database_and_serve_refuses_to_start():
    srv = Server(start=False)
    try:
        set_database(srv, "postgresql://consentd@127.0.0.1:1/consent?connect_timeout=2")
        code = srv.start(expect_fail=True)
        assert code == 6, (code, srv.output)
        assert "PostgreSQL" in srv.output and "unreachable" in srv.output, srv.output
        # Nothing was created under a file name made of the URI.
        assert not os.path.exists(os.path.join(srv.data, "postgresql:")), os.listdir(srv.data)
    finally:
        srv.close()


def test_operator_keeps_the_sqlite_file_path():
    if pg_admin():
        raise Skip("a scenario of the SQLite backend")
    srv = Server(start=False)
    try:
        set_database(srv, os.path.join(srv.data, "consentd.db"))
        srv.start()
        st, body = srv.call("GET", "/readyz")
        assert st == 200, body
    finally:
        srv.close()


if __name__ == "__main__":
    run(globals())
