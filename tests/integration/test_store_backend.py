"""The database setting picks the store backend: a file path is SQLite; a
PostgreSQL URI is refused at start with a clear "not built in" message
(never taken for a file name), until a PostgreSQL backend is built in."""
import json
import os

from harness import Server, run


def set_database(srv, value):
    conf = os.path.join(srv.data, "consentd.conf")
    with open(conf) as f:
        cfg = json.load(f)
    cfg["database"] = value
    with open(conf, "w") as f:
        json.dump(cfg, f)


def test_operator_configures_a_postgresql_database_and_is_told_it_is_not_built_in():
    srv = Server(start=False)
    try:
        set_database(srv, "postgresql://consentd@db.example/consent")
        code = srv.start(expect_fail=True)
        assert code == 3, (code, srv.output)
        assert "PostgreSQL" in srv.output and "not built into this consentd" in srv.output, srv.output
        # Nothing was created under a file name made of the URI.
        assert not os.path.exists(os.path.join(srv.data, "postgresql:")), os.listdir(srv.data)
    finally:
        srv.close()


def test_operator_keeps_the_sqlite_file_path():
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
