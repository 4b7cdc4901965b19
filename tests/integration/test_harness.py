"""The harness itself cannot report a test it did not run as passed.

Each scenario writes a tiny test file that imports this directory's
harness.py, runs it in a child Python and checks the exit status ctest
reads: 0 only when something passed and nothing failed, 1 when a filter
selects nothing or a test fails, 77 (SKIP_RETURN_CODE) when every selected
test skipped, and a refusal under `python3 -O`, which strips asserts. The
last scenario reads ctest's own view of the build: every integration test
carries SKIP_RETURN_CODE 77, so a skip is shown as skipped, not passed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PRELUDE = f"import sys\nsys.path.insert(0, {HERE!r})\nimport harness\nfrom harness import run\n"
MAIN = '\nif __name__ == "__main__":\n    run(globals())\n'


def run_file(body, *args, python_flags=(), env=None):
    """Writes a test file with body, runs it; returns (exit status, output)."""
    d = tempfile.mkdtemp(prefix="consentd-harness-")
    try:
        path = os.path.join(d, "test_fixture.py")
        with open(path, "w") as f:
            f.write(PRELUDE + body + MAIN)
        child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONOPTIMIZE", "CONSENTD_NO_SKIP")}
        child_env.update(env or {})
        p = subprocess.run([sys.executable, *python_flags, path, "--binary", harness.binary(), *args],
                           capture_output=True, text=True, env=child_env, timeout=120)
        return p.returncode, p.stdout + p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


PASSING = "def test_passes():\n    assert 1 + 1 == 2\n"
FAILING = "def test_fails():\n    assert 1 + 1 == 3, 'arithmetic'\n"
SKIPPING = "def test_skips():\n    raise harness.Skip('no such tool here')\n"


def test_a_passing_file_exits_0():
    code, out = run_file(PASSING)
    assert code == 0 and "PASS test_passes" in out, (code, out)


def test_a_failing_assert_exits_1():
    code, out = run_file(FAILING)
    assert code == 1 and "FAIL test_fails" in out, (code, out)


def test_a_filter_that_selects_nothing_fails():
    code, out = run_file(PASSING, "-k", "no_such_scenario")
    assert code == 1 and "no test selected" in out, (code, out)


def test_a_file_without_tests_fails():
    code, out = run_file("HELPER = 1\n")
    assert code == 1, (code, out)


def test_python_dash_O_is_refused_because_it_strips_asserts():
    for flags in (("-O",), ("-OO",)):
        code, out = run_file(FAILING, python_flags=flags)
        assert code == 1 and "PYTHONOPTIMIZE" in out, (flags, code, out)
    code, out = run_file(FAILING, env={"PYTHONOPTIMIZE": "1"})
    assert code == 1 and "PYTHONOPTIMIZE" in out, (code, out)


def test_check_fails_like_an_assert():
    code, out = run_file("def test_checks():\n    harness.check(1 + 1 == 3, 'arithmetic')\n")
    assert code == 1 and "arithmetic" in out, (code, out)


def test_a_generator_test_that_never_runs_its_body_fails():
    code, out = run_file("def test_generator():\n    yield\n    assert False\n")
    assert code == 1 and "FAIL test_generator" in out, (code, out)


def test_every_test_skipped_exits_77_and_says_why():
    code, out = run_file(SKIPPING)
    assert code == harness.SKIP_EXIT == 77, (code, out)
    assert "SKIP test_skips: no such tool here" in out and "0 passed" in out, out


def test_a_skip_beside_a_pass_is_printed_and_the_file_passes():
    code, out = run_file(PASSING + SKIPPING)
    assert code == 0 and "1 passed, 0 failed, 1 skipped" in out, (code, out)


def test_a_skip_fails_when_skips_are_not_allowed():
    code, out = run_file(SKIPPING, env={"CONSENTD_NO_SKIP": "1"})
    assert code == 1 and "FAIL test_skips" in out, (code, out)


def test_a_postgresql_scenario_stays_a_skip_on_sqlite_even_when_skips_are_not_allowed():
    body = "def test_pg_only():\n    harness.needs_postgresql()\n"
    env = {"CONSENTD_NO_SKIP": "1", "CONSENTD_TEST_DATABASE": ""}
    code, out = run_file(PASSING + body, env=env)
    assert code == 0 and "SKIP test_pg_only" in out and "1 passed, 0 failed, 1 skipped" in out, (code, out)


def test_every_file_with_postgresql_scenarios_runs_in_integration_pg():
    """A scenario that needs PostgreSQL is a SKIP on SQLite even in CI's
    strict run: it must then be run by integration.pg, or it could never
    fail."""
    with open(os.path.join(HERE, "run-pg.sh")) as f:
        listed = f.read()
    missing = []
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")) or name == "test_harness.py":
            continue
        with open(os.path.join(HERE, name)) as f:
            if "needs_postgresql()" in f.read() and not re.search(rf"\b{name[:-3]}\b", listed):
                missing.append(name)
    assert not missing, f"not in run-pg.sh: {missing}"


def test_the_browser_test_without_chromium_is_a_skip_not_a_pass():
    p = subprocess.run([sys.executable, os.path.join(HERE, "test_browser.py"), "--binary", harness.binary()],
                       capture_output=True, text=True, timeout=120,
                       env={**{k: v for k, v in os.environ.items() if k != "CONSENTD_NO_SKIP"},
                            "CONSENTD_CHROMIUM": "/nonexistent/chromium"})
    out = p.stdout + p.stderr
    assert p.returncode == 77 and "SKIP test_customer_withdraws" in out, (p.returncode, out)


def test_ctest_reports_exit_77_as_skipped():
    # The binary sits at the top of its build directory, where ctest's
    # test list is.
    build = os.path.dirname(os.path.abspath(harness.binary()))
    assert shutil.which("ctest"), "ctest is missing"
    p = subprocess.run(["ctest", "--show-only=json-v1"], cwd=build, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    tests = [t for t in json.loads(p.stdout)["tests"] if t["name"].startswith("integration.")]
    assert len(tests) >= 10, [t["name"] for t in tests]
    for t in tests:
        props = {pr["name"]: pr["value"] for pr in t.get("properties", [])}
        assert str(props.get("SKIP_RETURN_CODE")) == str(harness.SKIP_EXIT), (t["name"], props)


if __name__ == "__main__":
    run(globals())
