#!/usr/bin/env python3
"""The handler layer, checked: no service/h_*.c calls a store_*,
fieldcrypt_* or keyring_* function or touches a keyring through ->keys,
none waits for the writer with writer_run, and none renders a problem
itself with reply_problem / reply_problem_status.

docs/architecture.md: a handler parses, authorises, calls ONE domain
function (service/domain/) on a struct txn from app_txn(), and renders.
Rules, sealing, blind indexes and every store read or write live in the
domain. check-includes.py keeps the store and crypto headers out of the
handlers; this check catches what an include rule cannot see: a call made
through a header that is allowed (service/console.h pulls in store.h) and a
keyring reached through the app (ctx->app->keys).

Comments and string literals are blanked before matching, so a comment
that names store_audit_each() or a message that says "->keys" is not a
violation. Types (struct store_audit_filter) are not calls and are allowed:
the domain's interface speaks in the store's plain records.

writer_run blocks its caller until the commit thread has handled the job:
on an HTTP worker that is a worker lost for a whole group commit. A handler
submits (app_commit, or app_defer and writer_submit with a done callback).
The handlers that still wait are listed in WAITS_DUE_TO_GO: TEMPORARY, named
on every run, and reported as stale once they no longer wait.

A handler returns an error code (with app_reason for the problem's reason)
and the dispatcher renders it, once, with app_fail (service/reply.c): one
place decides status, type, detail and whether the refusal is committed
with its audit entry. The handlers that still render their own problems
are listed in PROBLEMS_DUE_TO_GO, the same way.

The CLI, checked the same way: service/main.c reaches the store and the
keys only through the domain layer (principal, rotation, trail), except for
the calls in CLI_OPENING, which open or create the database and the
keyring a verb works on, and close them again.

The modules, checked: the include graph between the modules of
service/ and service/domain/ has no cycle. A module is a .c and its .h
(service/domain/contact.c and contact.h are one); X depends on Y when a
file of X includes Y's header. PARTS names the files that implement another
module's header (app.h says which). A cycle is printed as the loop of
modules and the include that closes each step, so the fix is visible.

Usage: check-layers.py [--root DIR]   check the tree (exit 1 on a violation)
       check-layers.py --self-test    prove that a handler calling the store,
                                      and a cycle between modules, fail
"""
import argparse
import glob
import os
import re
import sys
import tempfile

CALL_RE = re.compile(r"\b((?:store|fieldcrypt|keyring)_[A-Za-z0-9_]+)\s*\(")
KEYS_RE = re.compile(r"->\s*keys\b")
WAIT_RE = re.compile(r"\bwriter_run\s*\(")
PROBLEM_RE = re.compile(r"\b(reply_problem(?:_status)?)\s*\(")
# Handlers allowed, for a while, to still block an HTTP worker on the writer
# or to render their own problems: none are left. A new entry must be named
# here with its issue and is reported on every run.
WAITS_DUE_TO_GO = set()
PROBLEMS_DUE_TO_GO = set()


def blank(src):
    """src with comments and string/char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


# What the CLI may call itself, one line each with why: opening and closing.
CLI_FILES = ("service/main.c",)
CLI_OPENING = {
    "store_open": "opens (and at init creates) the database a verb works on",
    "store_close": "closes it again",
    "store_conn_get": "a reader connection for audit verify (auditq_verify reads on it)",
    "store_conn_put": "gives that connection back",
    "keyring_init_dir": "init creates the key files, before any keyring exists",
    "keyring_open": "init opens the keys it made, to check them against the deployment (keycheck_verify)",
    "keyring_free": "frees the keyring that init or rotation_open opened",
}


def cli_violations(root):
    found = []
    for rel in CLI_FILES:
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = blank(f.read())
        for no, line in enumerate(text.split("\n"), 1):
            for m in CALL_RE.finditer(line):
                if m.group(1) not in CLI_OPENING:
                    found.append(f"{rel}:{no}: calls {m.group(1)}() (the CLI goes through "
                                 "service/domain/: principal, rotation, trail, ...)")
    return found


def violations(root, waits_allowed=WAITS_DUE_TO_GO, notes=None, problems_allowed=PROBLEMS_DUE_TO_GO):
    found = []
    waiting = set()
    rendering = set()
    for path in sorted(glob.glob(os.path.join(root, "service", "h_*.c"))):
        with open(path, encoding="utf-8") as f:
            text = blank(f.read())
        rel = os.path.relpath(path, root)
        for no, line in enumerate(text.split("\n"), 1):
            for m in CALL_RE.finditer(line):
                found.append(f"{rel}:{no}: calls {m.group(1)}() (use a service/domain/ function)")
            if KEYS_RE.search(line):
                found.append(f"{rel}:{no}: touches ->keys (the keys are the domain's, via app_txn)")
            if WAIT_RE.search(line):
                waiting.add(rel)
                if rel not in waits_allowed:
                    found.append(f"{rel}:{no}: waits with writer_run (blocks an HTTP worker; submit instead)")
            for m in PROBLEM_RE.finditer(line):
                rendering.add(rel)
                if rel not in problems_allowed:
                    found.append(f"{rel}:{no}: renders a problem with {m.group(1)}() "
                                 "(return the error code; app_reason for the reason)")
    if notes is not None:
        for rel in sorted(waits_allowed):
            if not os.path.exists(os.path.join(root, rel)):
                continue
            notes.append(f"TEMPORARY: {rel} still waits with writer_run" if rel in waiting
                         else f"stale: {rel} no longer waits; remove it from WAITS_DUE_TO_GO")
        for rel in sorted(problems_allowed):
            if not os.path.exists(os.path.join(root, rel)):
                continue
            notes.append(f"TEMPORARY: {rel} still renders its own problems" if rel in rendering
                         else f"stale: {rel} no longer renders problems; remove it from PROBLEMS_DUE_TO_GO")
    return found


# Files that are part of another module: app.h is implemented in app.c,
# auth.c and reply.c (its header says so), so auth.h is that module's too.
PARTS = {"service/auth.c": "service/app", "service/auth.h": "service/app",
         "service/reply.c": "service/app"}
QUOTED_RE = re.compile(r'^\s*#\s*include\s*"(service/(?:domain/)?[A-Za-z0-9_]+)\.h"', re.M)


def module_of(rel):
    return PARTS.get(rel, os.path.splitext(rel)[0])


def module_graph(root):
    """{module: {module it includes: "file:line" of the first such include}}."""
    graph = {}
    files = glob.glob(os.path.join(root, "service", "*.[ch]")) + \
        glob.glob(os.path.join(root, "service", "domain", "*.[ch]"))
    for path in sorted(files):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        me = module_of(rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        edges = graph.setdefault(me, {})
        for m in QUOTED_RE.finditer(text):
            them = module_of(m.group(1) + ".h")
            if them != me and them not in edges:
                edges[them] = f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
    return graph


def cycles(graph):
    """One loop per strongly connected component of more than one module."""
    index, low, stack, on, comps = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    loops = []
    for comp in comps:
        start = min(comp)
        # Shortest way back to start inside the component (breadth first).
        prev, todo = {start: None}, [start]
        found = None
        while todo and found is None:
            nxt = []
            for v in todo:
                for w in sorted(graph[v]):
                    if w not in comp:
                        continue
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            todo = nxt
        path, v = [], found
        while v is not None:
            path.append(v)
            v = prev[v]
        path.reverse()
        path.append(start)
        loops.append((path, sorted(comp)))
    return loops


def cycle_violations(root):
    graph = module_graph(root)
    found = []
    for loop, comp in cycles(graph):
        steps = ", ".join(f"{a} -> {b} ({graph[a][b]})" for a, b in zip(loop, loop[1:]))
        found.append(f"cycle: {' -> '.join(loop)}: {steps}")
        if len(comp) > len(loop) - 1:
            found[-1] += f"\n  (that loop is one of several among {', '.join(comp)})"
    return found


def check(root):
    notes = []
    found = violations(root, notes=notes) + cli_violations(root) + cycle_violations(root)
    for n in notes:
        print(n)
    for v in found:
        print(v)
    if found:
        print(f"check-layers: {len(found)} violation(s); see docs/architecture.md (Layers)")
        return 1
    print("check-layers: ok")
    return 0


def self_test():
    bad = (
        "/* store_audit_each() in a comment is fine, and so is \"->keys\" in a string. */\n"
        "#include \"service/app.h\"\n"
        "static void h_bad(struct reqctx *ctx)\n{\n"
        "\tstruct store_audit_filter f; /* a type, allowed */\n"
        "\tstore_audit_each (ctx->rd, &f, NULL, NULL);\n"
        "\tcontact_email_hashes(ctx->app->keys, \"a@b\", NULL, NULL);\n"
        "\tfieldcrypt_open(NULL);\n"
        "\twriter_run(ctx->app->writer, &ctx->job);\n"
        "\treply_problem (ctx, ERR_INVALID, \"reply_problem( in a string is fine\");\n}\n"
    )
    good = (
        "// keyring_get() is mentioned only here\n"
        "static void h_good(struct reqctx *ctx)\n{\n"
        "\tstruct txn t = app_txn(ctx, ctx->rd);\n"
        "\tconst char *m = \"store_x( and ->keys\";\n"
        "\ttrail_each(&t, NULL, NULL, NULL);\n"
        "\treturn app_reason(ctx, ERR_INVALID, \"reply_problem(\"); /* reply_problem() named */\n}\n"
    )
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "service"))
        with open(os.path.join(d, "service", "h_good.c"), "w") as f:
            f.write(good)
        if violations(d):
            print("self-test: a clean handler was flagged:", violations(d))
            return 1
        with open(os.path.join(d, "service", "h_bad.c"), "w") as f:
            f.write(bad)
        got = violations(d)
        want = ["service/h_bad.c:6: calls store_audit_each()", "service/h_bad.c:7: touches ->keys",
                "service/h_bad.c:8: calls fieldcrypt_open()", "service/h_bad.c:9: waits with writer_run",
                "service/h_bad.c:10: renders a problem with reply_problem()"]
        for w in want:
            if not any(g.startswith(w) for g in got):
                print("self-test: missed", w, "in", got)
                return 1
        if len(got) != len(want):
            print("self-test: unexpected findings", got)
            return 1
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "service"))
        with open(os.path.join(d, "service", "main.c"), "w") as f:
            f.write("/* store_contacts_rewrap() is named in a comment only */\n"
                    "static int cmd_x(void)\n{\n\tstore_open(&st, \"x\");\n"
                    "\tkeyring_retire_version(kr, dir, 1);\n"
                    "\tstore_principal_insert(w, \"n\", \"r\", h, 0);\n\tstore_close(st);\n}\n")
        got = cli_violations(d)
        want = ["service/main.c:5: calls keyring_retire_version()",
                "service/main.c:6: calls store_principal_insert()"]
        if len(got) != len(want) or not all(g.startswith(w) for g, w in zip(got, want)):
            print("self-test: CLI findings", got, "wanted", want)
            return 1
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "service", "domain"))

        def put(rel, text):
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        # A DAG: contact on consent on record; the app on a worker.
        put("service/domain/record.h", "#include <stdint.h>\n")
        put("service/domain/consent.c", '#include "service/domain/consent.h"\n#include "service/domain/record.h"\n')
        put("service/domain/contact.c", '#include "service/domain/consent.h"\n#include "service/domain/record.h"\n')
        put("service/app.c", '#include "service/app.h"\n#include "service/auth.h"\n#include "service/mail.h"\n')
        put("service/auth.c", '#include "service/app.h"\n')
        put("service/mail.c", '#include "service/mail.h"\n#include "service/env.h"\n')
        if cycle_violations(d):
            print("self-test: a DAG was flagged:", cycle_violations(d))
            return 1
        # Closing two loops: consent reaches back up to contact; mail to app.
        put("service/domain/consent.h", '#include "service/domain/contact.h"\n')
        put("service/mail.c", '#include "service/mail.h"\n/* #include "service/app.h" */\n#include "service/app.h"\n')
        got = cycle_violations(d)
        want = ["cycle: service/domain/consent -> service/domain/contact -> service/domain/consent: "
                "service/domain/consent -> service/domain/contact (service/domain/consent.h:1), "
                "service/domain/contact -> service/domain/consent (service/domain/contact.c:1)",
                "cycle: service/app -> service/mail -> service/app: service/app -> service/mail "
                "(service/app.c:3), service/mail -> service/app (service/mail.c:3)"]
        if sorted(got) != sorted(want):
            print("self-test: cycles found", got, "wanted", want)
            return 1
    print("check-layers self-test: ok")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    sys.exit(self_test() if a.self_test else check(os.path.abspath(a.root)))


if __name__ == "__main__":
    main()
