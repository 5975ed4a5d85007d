#!/usr/bin/env python3
"""Cross-check both verifiers on bundles built here, from the specification, around real events.

    python3 verifier/python/crosscheck.py --jitgate target/debug/jitgate --corpus DIR [--out DIR2]

The corpus (`bundle_corpus`) is signed with keys whose secrets stay in the Rust example, so it
can only hold the variants the Rust side chose. This tool takes the real event texts of
DIR/small.json and builds further bundles the way docs/evidence.md §2, §3, §6 and §6a describe
them — its own log around the events, its own evidence key and witness key — covering what the
corpus does not: recordings (attested text, altered/removed/duplicated chunks, a gap, no last
chunk), several policies (order in the attested text), canonical-form edge cases (version 1 and
2 numbers, escapes, key order, unknown fields), chain rules (missing, doubled, early events,
states) checkpoint times and witnesses (other keys, duplicates, another checkpoint). It runs `jitgate evidence verify-bundle` and this verifier on each,
and exits 1 unless both accept or both reject every bundle (the Rust CLI reports a message, not
an error kind, so only the verdict is compared; both messages are printed).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import jitgate_verify as jv  # noqa: E402
import test_verifier as tv  # noqa: E402
import nacl.signing  # noqa: E402

SK = nacl.signing.SigningKey(hashlib.sha256(b"crosscheck evidence key").digest())
WSK = nacl.signing.SigningKey(hashlib.sha256(b"crosscheck witness key").digest())
WNAME = "witness.example/crosscheck"
OTHER = nacl.signing.SigningKey(hashlib.sha256(b"crosscheck second witness key").digest())
ONAME = "witness.example/second"


class Builder:
    def __init__(self, base):
        self.base = base
        self.pk, self.wpk = bytes(SK.verify_key), bytes(WSK.verify_key)
        self.kid = jv.key_id(self.pk)
        self.events = [(e["seq"], e["canonical"]) for e in base["events"]]
        self.op = json.loads(next(t for _, t in self.events if '"kind":"operation"' in t))

    def key_file(self):
        return f"jitgate-evidence-key v1 {self.kid} {jv.b64(self.pk)}\n"

    def vkey(self):
        return f"{WNAME}+{jv.note_key_hash(WNAME, 4, self.wpk).hex()}+{jv.b64(bytes([4]) + self.wpk)}\n"

    def bundle(self, events, fmt=2, policies=None, recs=None, listed=None, cos=True,
               time="2026-11-01T08:02:10.040Z", size=None):
        n = size or max(s for s, _ in events) + 3
        leaves = [jv.leaf_hash(b"another grant's event %d" % i) for i in range(n)]
        for s, t in events:
            leaves[s - 1] = jv.leaf_hash(t.encode())
        cp = {"log_id": "jitgate.test/crosscheck", "tree_size": n, "root_hash": tv.mth(leaves).hex(),
              "time": time, "key_id": self.kid}
        b = {"format": jv.FORMATS[fmt - 1], "log_id": cp["log_id"], "grant_id": self.base["grant_id"],
             "checkpoint": {"checkpoint": cp, "signature": jv.b64(SK.sign(jv.checkpoint_text(cp)).signature)},
             "events": []}
        for s, t in events:
            e = {"seq": s, "canonical": t}
            if fmt == 1:
                e["proof"] = [h.hex() for h in tv.audit_path(s - 1, leaves)]
            b["events"].append(e)
        if fmt == 2:
            mp = tv.build_multiproof(leaves, [s - 1 for s, _ in events])
            if mp:
                b["multiproof"] = [jv.b64(h) for h in mp]
        pol = self.base["policies"] if policies is None else policies
        b["policies"] = pol
        b["keys"] = [{"key_id": self.kid, "public_key": jv.b64(self.pk)}]
        b["attestation"] = {"key_id": self.kid, "events": len(events),
                            "policy_sha256": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in pol.items()},
                            "signature": ""}
        if listed is not None:
            b["attestation"]["recording_chunks"] = listed
        if recs is not None:
            b["recordings"] = recs
        if cos:
            b["cosignatures"] = [self.cosign(WSK, WNAME, cp)]
        b["attestation"]["signature"] = jv.b64(SK.sign(jv.attested_text(b)).signature)
        return b

    def cosign(self, sk, name, cp, t=1793520000):
        """A tlog-cosignature line (§3a) by `sk` under `name` on checkpoint `cp`."""
        sig = sk.sign(jv.cosigned_message(jv.checkpoint_text(cp), t)).signature
        return f"\u2014 {name} " + jv.b64(jv.note_key_hash(name, 4, bytes(sk.verify_key)) + t.to_bytes(8, "big") + sig)

    def chunks(self, datas, first_seq, complete=True, session="sess-000001"):
        """recording.chunk events (§6a) of one session at seqs first_seq, first_seq + 1, …"""
        evs, recs, prev, off = [], [], bytes(32), 0
        for i, d in enumerate(datas):
            last = complete and i == len(datas) - 1
            h = jv.chunk_hash(session, i, off, last, prev, d)
            ev = dict(self.op, kind="recording.chunk",
                      data={"gseq": 100 + i, "session_id": session,
                            "detail": {"index": i, "offset": off, "length": len(d), "last": last,
                                       "prev_hash": prev.hex(), "hash": h.hex()}})
            evs.append((first_seq + i, jv.jcs(ev).decode()))
            recs.append({"session_id": session, "index": i, "data": jv.b64(d)})
            prev, off = h, off + len(d)
        return evs, recs


def cases(bd):
    ev, op = bd.events, bd.op
    v1op = {k: v for k, v in op.items() if k != "v"}
    free = max(s for s, _ in ev if '"kind":"operation"' in _) + 1  # a seq inside the session

    def with_op(text):
        return sorted(ev + [(free, text)])

    def without(kind):
        return [x for x in ev if f'"kind":"{kind}"' not in x[1]]

    last_at = json.loads(ev[-1][1])["at"]
    out = {
        "format 2": bd.bundle(ev),
        "format 1": bd.bundle(ev, fmt=1),
        "every leaf in the bundle (empty multi-proof)": bd.bundle([(i + 1, t) for i, (_, t) in enumerate(ev)],
                                                                 size=len(ev)),
        "four policies (attested in id order)": bd.bundle(ev, policies=dict(
            {"zeta": "z", "Alpha": "a", "\u00e9t\u00e9": "e"}, **bd.base["policies"])),
        "no policy": bd.bundle(ev, policies={}),
        "no cosignature (witness required)": bd.bundle(ev, cos=False),
        "checkpoint at the last event's time": bd.bundle(ev, time=last_at),
        "checkpoint an hour before the events": bd.bundle(ev, time="2026-11-01T07:00:00.000Z"),
        # docs/evidence.md §7 step 7: the 5 min allowance is for gateway-reported times only;
        # the last event (grant.ended) is the server's
        "checkpoint 1 ms before a server event": bd.bundle(ev, time=last_at[:-4] + "079Z"
                                                          if last_at.endswith("080Z") else last_at),
    }
    rec_ev, recs = bd.chunks([b"hello ", b"world"], free)
    listed = [f"{r['session_id']}/{r['index']}" for r in recs]
    allrec = sorted(ev + rec_ev)
    out.update({
        "recordings": bd.bundle(allrec, recs=recs, listed=listed),
        "recordings, format 1": bd.bundle(allrec, fmt=1, recs=recs, listed=listed),
        "recordings in reverse order": bd.bundle(allrec, recs=recs[::-1], listed=listed[::-1]),
        "recording chunk not held by the exporter": bd.bundle(allrec, recs=recs[:1], listed=listed[:1]),
        "recordings: none held": bd.bundle(allrec),
        "recordings: empty lists": bd.bundle(allrec, recs=[], listed=[]),
        "recording chunk removed after export": bd.bundle(allrec, recs=recs[:1], listed=listed),
        "recording chunk altered": bd.bundle(allrec, recs=[recs[0], dict(recs[1], data=jv.b64(b"worle"))],
                                             listed=listed),
        "recording chunk given twice": bd.bundle(allrec, recs=recs + recs[:1], listed=listed),
        "recording chunk without its event": bd.bundle(allrec, recs=recs + [dict(recs[0], index=5)], listed=listed),
    })
    cut_ev, cut = bd.chunks([b"a", b"b"], free, complete=False)
    out["recording without its last chunk"] = bd.bundle(sorted(ev + cut_ev), recs=cut,
                                                        listed=[f"{r['session_id']}/{r['index']}" for r in cut])
    gap_ev, gap = bd.chunks([b"a", b"b", b"c"], free)
    out["recording chunk missing from the log"] = bd.bundle(sorted(ev + [gap_ev[0], (free + 1, gap_ev[2][1])]),
                                                            recs=[gap[0], gap[2]])
    spellings = {
        "v2 non-ASCII": jv.jcs(dict(op, actor="gw-\u00e9\U0001F600")).decode(),
        "v2 escaped non-ASCII": jv.jcs(dict(op, actor="gw-\u00e9")).decode().replace("\u00e9", "\\u00e9"),
        "v2 control characters": jv.jcs(dict(op, actor="a\x01\x1f\x7f\u2028b")).decode(),
        "v2 key order by UTF-16": jv.jcs(dict(op, data={"\ufb33": 1, "\U0001F600": 2, "a": 3})).decode(),
        "v1 key order by UTF-8": jv.canonical_v1(dict(v1op, data={"\ufb33": 1, "\U0001F600": 2})).decode(),
        "v1 event": jv.canonical_v1(v1op).decode(),
        "v explicitly 1": jv.jcs(dict(op, v=1)).decode(),
        "v 3": jv.jcs(dict(op, v=3)).decode(),
        "unknown field": jv.jcs(dict(op, extra=1)).decode(),
        "missing actor": jv.jcs({k: v for k, v in op.items() if k != "actor"}).decode(),
        "time without milliseconds": jv.jcs(dict(op, at=op["at"][:19] + "Z")).decode(),
        "time with an offset": jv.jcs(dict(op, at=op["at"][:-1] + "+00:00")).decode(),
        "state_before not a string": jv.jcs(dict(op, state_before=1)).decode(),
        "naming neither request nor grant": jv.jcs({k: v for k, v in op.items()
                                                    if k not in ("grant_id", "request_id")}).decode(),
        "naming another request": jv.jcs(dict(op, request_id="req-other")).decode(),
        "naming only the request": jv.jcs({k: v for k, v in op.items() if k != "grant_id"}).decode(),
        "teardown before grant.ended": jv.jcs(dict(op, kind="teardown.check", data=None)).decode(),
    }
    for x, want in (("1.5", 1.5), ("1.0 spelled 1", 1.0), ("2^53", 2 ** 53), ("1e21", 1e21), ("-0.0", -0.0),
                    ("1e-7", 1e-7), ("0.000001", 1e-6), ("1e16", 1e16), ("123.456", 123.456),
                    # valid RFC 8785 text that the jitgate build rejects today (README)
                    ("-3.44654920223904e-30", -3.44654920223904e-30), ("2.7890840981819507e+20", 2.7890840981819507e20)):
        spellings[f"v2 number {x}"] = jv.jcs(dict(op, data=dict(op["data"], x=want))).decode()
        spellings[f"v1 number {x}"] = jv.canonical_v1(dict(v1op, data=dict(op["data"], x=want))).decode()
    zero = jv.jcs(dict(op, data=dict(op["data"], x=0))).decode()
    for sp in ("1.0", "1E2", "2e-3", "9007199254740993", "-0"):
        spellings[f"v2 number spelled {sp}"] = zero.replace('"x":0', '"x":' + sp)
    for name, text in spellings.items():
        out["event: " + name] = bd.bundle(with_op(text))
    out.update({
        "chain: no request.submitted": bd.bundle(ev[1:]),
        "chain: no grant.issued": bd.bundle(without("grant.issued")),
        "chain: no request.decided": bd.bundle(without("request.decided")),
        "chain: no approval": bd.bundle([x for x in without("approval.recorded") if '"request.approved"' not in x[1]]),
        "chain: no grant.ended": bd.bundle(ev[:-1]),
        "chain: decided twice": bd.bundle(sorted(ev + [(ev[1][0] + 1, ev[1][1])])),
        "chain: request.approved twice": bd.bundle(sorted(ev + [(ev[3][0] + 1, ev[3][1])])),
        "chain: an operation before grant.issued": bd.bundle(sorted(ev[:4] + [(ev[4][0] - 1, ev[7][1])] + ev[4:])),
    })
    # witnesses: (bundle, extra arguments); OTHER is a second trusted witness when named
    b0 = out["format 2"]
    cp = b0["checkpoint"]["checkpoint"]
    two = ["--witness-key", "@OTHER", "--min-witnesses", "2"]
    for name, lines, extra in (
            ("cosigned by the same name with another key", [bd.cosign(OTHER, WNAME, cp)], []),
            ("cosigned by a trusted and an untrusted witness", b0["cosignatures"] + [bd.cosign(OTHER, ONAME, cp)], []),
            ("cosigned by two trusted witnesses, two required", b0["cosignatures"] + [bd.cosign(OTHER, ONAME, cp)], two),
            ("cosigned twice by one witness, two required", b0["cosignatures"] * 2, two),
            ("cosigned at time 0", [bd.cosign(WSK, WNAME, cp, t=0)], []),
            ("cosignature made for another checkpoint", [bd.cosign(WSK, WNAME, dict(cp, tree_size=cp["tree_size"] + 1))], []),
            ("no cosignature, none required", [], ["--min-witnesses", "0"])):
        b = json.loads(json.dumps(b0))
        b["cosignatures"] = lines
        if not lines:
            del b["cosignatures"]
        b["attestation"]["signature"] = jv.b64(SK.sign(jv.attested_text(b)).signature)
        out["witnesses: " + name] = (b, extra)
    return out


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    try:
        j = json.loads(p.stdout)
        return bool(j.get("ok")), j.get("error") or ""
    except ValueError:
        return None, (p.stdout + p.stderr).strip()[:200]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--jitgate", required=True, help="the jitgate binary")
    ap.add_argument("--corpus", required=True, help="a bundle_corpus directory (for real event texts)")
    ap.add_argument("--out", help="keep the bundles here")
    args = ap.parse_args()
    with open(os.path.join(args.corpus, "small.json"), encoding="utf-8") as f:
        bd = Builder(json.load(f))
    out = args.out or tempfile.mkdtemp(prefix="crosscheck-")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "keys.pub"), "w") as f:
        f.write(bd.key_file())
    with open(os.path.join(out, "witness.vkey"), "w") as f:
        f.write(bd.vkey())
    opk = bytes(OTHER.verify_key)
    with open(os.path.join(out, "other.vkey"), "w") as f:
        f.write(f"{ONAME}+{jv.note_key_hash(ONAME, 4, opk).hex()}+{jv.b64(bytes([4]) + opk)}\n")
    differ = 0
    for i, (name, b) in enumerate(cases(bd).items()):
        b, extra = b if isinstance(b, tuple) else (b, [])
        extra = [os.path.join(out, "other.vkey") if a == "@OTHER" else a for a in extra]
        path = os.path.join(out, f"case-{i:02d}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(b, f, ensure_ascii=False)
        common = [path, "--key", os.path.join(out, "keys.pub"), "--json", "--witness-key",
                  os.path.join(out, "witness.vkey")] + extra
        rust = run([args.jitgate, "evidence", "verify-bundle"] + common)
        py = run([sys.executable, os.path.join(HERE, "jitgate_verify.py")] + common)
        same = rust[0] == py[0] and rust[0] is not None
        differ += not same
        print(f"{'agree   ' if same else 'DISAGREE'} case-{i:02d} {name}: rust {'ok' if rust[0] else 'rejects'}"
              f"{'' if rust[0] else ' (' + rust[1][:100] + ')'}; python {'ok' if py[0] else 'rejects'}"
              f"{'' if py[0] else ' (' + py[1][:100] + ')'}")
    print(f"crosscheck: {i + 1 - differ} passed, {differ} failed")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
