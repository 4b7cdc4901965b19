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

Usage: check-layers.py [--root DIR]   check the tree (exit 1 on a violation)
       check-layers.py --self-test    prove that a handler calling the store fails
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
# TEMPORARY: handlers that still block an HTTP worker on the writer.
WAITS_DUE_TO_GO = set()
# TEMPORARY (issue 11): handlers that still render their own problems.
PROBLEMS_DUE_TO_GO = {"service/h_outreach.c"}


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


def check(root):
    notes = []
    found = violations(root, notes=notes)
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
