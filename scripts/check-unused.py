#!/usr/bin/env python3
"""Dead code, checked: every function the consentd libraries export
(nm: a global text symbol of build/libcd_*.a) is called from somewhere,
in service/, audit/, policy/ or tests/. A function whose name appears in
no source file but its own definition has no caller: delete it (or make
it static, when its own file is the caller; the compiler's
-Wunused-function then watches it).

Comments and strings are blanked before the names are counted (the
blanker is check-layers.py's), so a comment that names a function does
not keep it alive. Declarations in headers are not counted either: a
header is a promise, not a caller.

Usage: check-unused.py --build DIR [--root DIR]   check (exit 1 on a finding)
       check-unused.py --self-test                prove that a dead function fails
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("service", "audit", "policy", "tests")


def blanker():
    spec = importlib.util.spec_from_file_location("check_layers", os.path.join(HERE, "check-layers.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.blank


def exported(build):
    names = set()
    for lib in sorted(glob.glob(os.path.join(build, "libcd_*.a"))):
        out = subprocess.run(["nm", "-g", "--defined-only", lib], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "T":
                names.add(parts[2])
    return names


def counts(root, blank):
    """{word: occurrences} over every .c file below SOURCES."""
    seen = {}
    word = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
    for top in SOURCES:
        for path in glob.glob(os.path.join(root, top, "**", "*.c"), recursive=True):
            with open(path, encoding="utf-8", errors="replace") as f:
                for w in word.findall(blank(f.read())):
                    seen[w] = seen.get(w, 0) + 1
    return seen


def unused(names, seen):
    # One occurrence is the definition itself.
    return sorted(n for n in names if seen.get(n, 0) <= 1)


def self_test():
    blank = blanker()
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "service"))
        with open(os.path.join(d, "service", "x.c"), "w") as f:
            f.write("/* x_dead() is only named here */\nint x_dead(void) { return 0; }\n"
                    "int x_live(void) { return 1; }\nint main(void) { return x_live(); }\n")
        got = unused({"x_dead", "x_live"}, counts(d, blank))
        if got != ["x_dead"]:
            print("self-test: wanted ['x_dead'], got", got)
            return 1
    print("check-unused self-test: ok")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(HERE, ".."))
    ap.add_argument("--build")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(self_test())
    if a.build is None:
        ap.error("--build DIR is needed (the libraries' symbols are read with nm)")
    names = exported(a.build)
    if not names:
        print(f"check-unused: no libcd_*.a in {a.build}")
        sys.exit(1)
    dead = unused(names, counts(os.path.abspath(a.root), blanker()))
    for n in dead:
        print(f"check-unused: {n}() is defined but nothing calls it")
    if dead:
        print(f"check-unused: {len(dead)} function(s) without a caller")
        sys.exit(1)
    print(f"check-unused: ok ({len(names)} exported functions, each called)")
    sys.exit(0)


if __name__ == "__main__":
    main()
