"""The docs stay true: every route the code serves is in docs/openapi.yaml
with its method, and the document names no route the code does not serve."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def code_routes():
    routes = set()
    for path in glob.glob(os.path.join(ROOT, "service", "h_*.c")):
        for method, pattern in re.findall(r'\{\s*"([A-Z]+)",\s*"(/[^"]*)"', open(path).read()):
            routes.add((method.lower(), re.sub(r"\{[a-z_]+\}", "{}", pattern)))
    return routes


def doc_routes():
    import yaml
    doc = yaml.safe_load(open(os.path.join(ROOT, "docs", "openapi.yaml")))
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    routes = set()
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                routes.add((method, re.sub(r"\{[a-z_]+\}", "{}", path)))
    return routes


def test_every_route_is_documented_in_openapi():
    code, docs = code_routes(), doc_routes()
    assert len(code) >= 10, code
    missing = sorted(code - docs)
    extra = sorted(docs - code)
    assert not missing, f"routes missing from docs/openapi.yaml: {missing}"
    assert not extra, f"docs/openapi.yaml documents routes the code does not serve: {extra}"


def test_every_problem_type_is_documented():
    types = set(re.findall(r'"([a-z-]+)", "[A-Z][^"]*" \}', open(os.path.join(ROOT, "service", "problem.c")).read()))
    api = open(os.path.join(ROOT, "docs", "api.md")).read()
    assert types, "no problem types found in service/problem.c"
    for t in types | {"method-not-allowed", "internal"}:
        assert f"`{t}`" in api, f"problem type {t} is not in docs/api.md"


def code_reasons():
    """Every machine-readable reason the server can put in a reply: the
    policy's decision reasons, the reasons handed to reply_problem(), and the
    reasons of denials (audit_decide(ctx, false, ...)), which a failed write
    answers with. service/app.c's authentication reasons (missing_token, ...)
    go to the audit trail only: a 401 names no reason."""
    found = {}
    text = open(os.path.join(ROOT, "policy", "policy.c")).read()
    table = re.search(r"reason_names\[POLICY_REASON_COUNT\] = \{(.*?)\};", text, re.S)
    assert table, "policy.c: reason_names not found"
    for r in re.findall(r'"([a-z_]+)"', table.group(1)):
        found.setdefault(r, "policy/policy.c")
    calls = [r"reply_problem\([^;]*?\)\s*;", r"reply_problem_status\([^;]*?\)\s*;",
             r"audit_decide\(ctx, false,[^;]*?\)\s*;", r"\breason\s*=\s*[^;=]*;"]
    for path in glob.glob(os.path.join(ROOT, "service", "h_*.c")) + [os.path.join(ROOT, "service", "app.c")]:
        text = open(path).read()
        for pat in calls:
            for m in re.finditer(pat, text, re.S):
                call = m.group(0)
                if call.startswith("reason") and (os.path.basename(path) == "app.c" or "(" in call):
                    continue
                # A denial answered with an HTML page (customer pages) names
                # its reason in the audit trail only.
                if call.startswith("audit_decide") and "reply_page" in text[m.end():m.end() + 200]:
                    continue
                # The last argument (or the assigned value) and both arms of a ?: in it.
                tail = call.rsplit(",", 1)[-1] if not call.startswith("reason") else call
                for r in re.findall(r'"([a-z][a-z0-9_]*)"', tail):
                    found.setdefault(r, os.path.relpath(path, ROOT))
    return found


def spec_reasons():
    import yaml
    doc = yaml.safe_load(open(os.path.join(ROOT, "docs", "openapi.yaml")))
    out = set()

    def walk(o, key=None):
        if isinstance(o, dict):
            if key in ("reason", "Reason", "ProblemReason"):
                out.update(x for x in o.get("enum", []) if isinstance(x, str))
                if isinstance(o.get("const"), str):
                    out.add(o["const"])
            for k, v in o.items():
                walk(v, k)
        elif isinstance(o, list):
            for v in o:
                walk(v, key)

    walk(doc)
    return out


def test_every_reason_the_server_sends_is_in_an_enum_of_the_spec():
    code, spec = code_reasons(), spec_reasons()
    assert len(code) >= 20, code
    missing = {r: where for r, where in sorted(code.items()) if r not in spec}
    assert not missing, f"reasons the code sends that no enum in docs/openapi.yaml lists: {missing}"


def test_every_operation_describes_405():
    import yaml
    doc = yaml.safe_load(open(os.path.join(ROOT, "docs", "openapi.yaml")))
    lacking = [f"{m.upper()} {p}" for p, item in doc["paths"].items() for m, op in item.items()
               if m in ("get", "put", "post", "delete", "patch") and "405" not in op.get("responses", {})]
    assert not lacking, f"operations that do not describe their 405: {lacking}"


if __name__ == "__main__":
    run(globals())
