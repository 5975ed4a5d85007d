#!/usr/bin/env python3
"""Run the independent verifier on a corpus of bundles and compare with the Rust verdicts.

    python3 verifier/python/agree.py DIR

DIR is what `cargo run -p jitgate-evidence --example bundle_corpus -- DIR` writes: DIR/<case>.json
bundles, DIR/keys.pub, DIR/*.vkey and DIR/expected.json = {case: {"ok": bool, "error": "Kind" or
null, "args": [extra CLI args]}}. Each case runs as a separate process, exactly as an auditor
would run it (in DIR, so the args' relative paths resolve). Exits 1 unless every verdict (ok, and
the error kind) agrees, printing one table row per case.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY = os.path.join(HERE, "jitgate_verify.py")


def run_case(directory, case, spec):
    args = list(spec.get("args") or [])
    cmd = [sys.executable, VERIFY, f"{case}.json", "--json"]
    if "--key" not in args:
        cmd += ["--key", "keys.pub"]
    proc = subprocess.run(cmd + args, cwd=directory, capture_output=True, text=True)
    if proc.returncode == 2:
        return False, "usage: " + proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "usage", proc
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        return None, f"no JSON output (exit {proc.returncode}): {proc.stderr.strip()[:200]}", proc
    if out.get("ok") and proc.returncode == 0:
        return True, None, proc
    return False, out.get("error", ""), proc


def main(argv):
    if len(argv) != 2:
        print("usage: agree.py DIR", file=sys.stderr)
        return 2
    directory = argv[1]
    try:
        with open(os.path.join(directory, "expected.json"), encoding="utf-8") as f:
            expected = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{directory}/expected.json: {e}", file=sys.stderr)
        return 2
    rows, disagree = [], 0
    for case in sorted(expected):
        spec = expected[case]
        ok, error, _ = run_case(directory, case, spec)
        kind = error.split(":", 1)[0] if error else None
        want_ok, want_kind = bool(spec.get("ok")), spec.get("error")
        same = ok == want_ok and (want_ok or kind == want_kind)
        disagree += not same
        rows.append((case, "ok" if want_ok else str(want_kind), "ok" if ok else str(kind), "agree" if same else "DISAGREE",
                     "" if same else (error or "")))
    w = [max(len(r[i]) for r in rows + [("case", "rust", "python", "verdict", "")]) for i in range(4)]
    print(f"{'case':<{w[0]}}  {'rust':<{w[1]}}  {'python':<{w[2]}}  verdict")
    for r in rows:
        line = f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}"
        print(line + (f"  ({r[4]})" if r[4] else ""))
    print(f"agreement: {len(rows) - disagree} passed, {disagree} failed")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
