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


if __name__ == "__main__":
    run(globals())
