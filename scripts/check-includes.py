#!/usr/bin/env python3
"""The library boundaries, checked: every #include in service/, policy/ and
audit/ must be allowed by the .may_include file of the file's own folder.

A .may_include file holds one rule a line (after '#' the line is a comment):

    PATTERN              any file of this folder may include PATTERN
    FILES: PATTERN       only the files matching FILES (a glob on the file
                         name) may include PATTERN
    @libc                the C library and POSIX headers (the set LIBC below)

PATTERN is what the #include names: <name.h> for a system header, a
repository path (service/base/error.h) for a quoted one. In a pattern '*'
matches within one path segment and '**' across segments, so
"service/*.h" does not admit "service/store/store.h".

A rule whose comment contains TEMPORARY is an allowance that is due to go
(it is listed on every run, and reported as stale once nothing uses it).

Every folder below the checked roots that holds .c or .h files must have
its own .may_include: a new folder states its boundary before it compiles.
The rules are whitelists, so anything a folder does not name is refused:
that is how "openssl only in crypto/ and audit/" and "policy/ is pure" hold.

Usage: check-includes.py [--root DIR]   check the tree (exit 1 on a violation)
       check-includes.py --self-test    prove that a wrong include fails
"""
import argparse
import fnmatch
import os
import re
import sys
import tempfile

ROOTS = ("service", "policy", "audit")

# ISO C11 and the POSIX headers the daemon uses. Adding one here is a
# deliberate act: a new system header is a new dependency.
LIBC = """
assert.h ctype.h errno.h float.h inttypes.h limits.h locale.h math.h setjmp.h
signal.h stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h stdio.h
stdlib.h stdnoreturn.h string.h threads.h time.h uchar.h wchar.h wctype.h
dirent.h fcntl.h getopt.h poll.h pthread.h sched.h strings.h syslog.h unistd.h
sys/*.h netinet/*.h arpa/*.h netdb.h
""".split()

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def glob_re(pattern):
    """A glob where '*' stays inside one path segment and '**' crosses them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class Rule:
    def __init__(self, where, files, pattern, temporary):
        self.where = where          # "path/.may_include:LINE", for messages
        self.files = files          # glob on the file name, or None for all
        self.pattern = pattern
        self.regex = glob_re(pattern)
        self.temporary = temporary
        self.used = False

    def admits(self, filename, include):
        if self.files is not None and not fnmatch.fnmatchcase(filename, self.files):
            return False
        return bool(self.regex.match(include))


def load_rules(path, shown):
    rules = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line, _, comment = raw.partition("#")
            line = line.strip()
            if not line:
                continue
            where = f"{shown}:{n}"
            temporary = "TEMPORARY" in comment
            files = None
            if ":" in line:
                files, _, line = (s.strip() for s in line.partition(":"))
            if line == "@libc":
                rules += [Rule(where, files, f"<{h}>", temporary) for h in LIBC]
            elif line.startswith("@"):
                raise SystemExit(f"{where}: unknown set {line}")
            else:
                rules.append(Rule(where, files, line, temporary))
    return rules


def source_dirs(root):
    for top in ROOTS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            sources = sorted(f for f in filenames if f.endswith((".c", ".h")))
            if sources:
                yield dirpath, sources


def check(root, out=sys.stdout):
    """Returns the number of violations; prints one line for each."""
    bad = 0
    temporary = []
    for dirpath, sources in source_dirs(root):
        rel_dir = os.path.relpath(dirpath, root)
        rules_path = os.path.join(dirpath, ".may_include")
        if not os.path.exists(rules_path):
            print(f"{rel_dir}/: no .may_include (every source folder states what it may include)",
                  file=out)
            bad += 1
            continue
        rules = load_rules(rules_path, os.path.join(rel_dir, ".may_include"))
        for name in sources:
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if not m:
                        continue
                    include = f"<{m.group(2)}>" if m.group(1) == "<" else m.group(2)
                    hit = next((r for r in rules if r.admits(name, include)), None)
                    if hit is None:
                        print(f"{rel_dir}/{name}:{n}: includes {include}, which "
                              f"{rel_dir}/.may_include does not allow", file=out)
                        bad += 1
                    else:
                        hit.used = True
        temporary += [r for r in rules if r.temporary]
    for r in temporary:
        state = "in use" if r.used else "STALE, nothing needs it any more: delete the line"
        print(f"note: temporary allowance {r.where}: {r.files or '*'}: {r.pattern} ({state})",
              file=out)
    return bad


def self_test():
    """A small tree with one right and one wrong include in each kind of rule."""
    import io

    def tree(files):
        d = tempfile.mkdtemp(prefix="check-includes.")
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        return d

    good = {
        "policy/.may_include": "@libc\n<jansson.h>\npolicy/*.h\nservice/base/*.h\n",
        "policy/p.c": '#include <stdlib.h>\n#include <sys/stat.h>\n#include "policy/p.h"\n',
        "policy/p.h": "#include <stdbool.h>\n",
        "service/.may_include": "@libc\nservice/*.h\nhttp.c: <microhttpd.h>\n"
                                "x.c: service/store/store.h  # TEMPORARY until the split\n",
        "service/http.c": "#include <microhttpd.h>\n",
        "service/x.c": '#include "service/store/store.h"\n',
        "service/store/.may_include": "@libc\n<sqlite3.h>\nservice/store/*.h\n",
        "service/store/store.h": "#include <sqlite3.h>\n",
    }
    cases = [
        ("a good tree passes", {}, 0, None),
        ("openssl in policy/ fails", {"policy/p.c": "#include <openssl/evp.h>\n"}, 1,
         "policy/p.c:1: includes <openssl/evp.h>"),
        ("sqlite3.h outside the store fails", {"service/y.c": "#include <sqlite3.h>\n"}, 1,
         "service/y.c:1: includes <sqlite3.h>"),
        ("microhttpd.h outside http.c fails", {"service/router.c": "  #  include <microhttpd.h>\n"},
         1, "service/router.c:1: includes <microhttpd.h>"),
        ("'*' stays inside its folder", {"policy/q.c": '#include "policy/sub/q.h"\n'}, 1,
         "policy/q.c:1: includes policy/sub/q.h"),
        ("a folder without .may_include fails", {"audit/a.c": "#include <stdio.h>\n"}, 1,
         "audit/: no .may_include"),
        ("a temporary allowance is listed, stale when unused", {"service/x.c": ""}, 0,
         "STALE"),
    ]
    failed = 0
    for name, change, want_bad, want_text in cases:
        files = dict(good)
        files.update(change)
        root = tree(files)
        buf = io.StringIO()
        got = check(root, out=buf)
        ok = got == want_bad and (want_text is None or want_text in buf.getvalue())
        print(f"{'ok' if ok else 'FAIL'}: {name}")
        if not ok:
            print(f"  expected {want_bad} violation(s) mentioning {want_text!r}, got {got}:")
            print("  " + buf.getvalue().replace("\n", "\n  "))
            failed += 1
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(1 if self_test() else 0)
    bad = check(os.path.abspath(args.root))
    if bad:
        print(f"check-includes: {bad} include(s) cross a library boundary (see docs/hacking.md)")
        sys.exit(1)
    print("check-includes: every include is allowed")


if __name__ == "__main__":
    main()
