"""Tests of the independent verifier (stdlib unittest): python3 -m unittest test_verifier -v"""

import bisect
import hashlib
import itertools
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jitgate_verify as jv  # noqa: E402
import nacl.signing  # noqa: E402


def from_bits(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]


class Jcs(unittest.TestCase):
    def test_rfc8785_3_2_2_example(self):
        # RFC 8785 §3.2.2: the input and its canonical output, as printed in the RFC
        text = ('{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n'
                '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
                '  "literals": [null, true, false]\n}')
        want = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
        self.assertEqual(jv.jcs(jv.strict_json(text)), want.encode("utf-8"))

    def test_rfc8785_3_2_3_key_order(self):
        # RFC 8785 §3.2.3: keys sorted by UTF-16 code units (the emoji's surrogates sort
        # before U+FB33 although its code point is larger)
        obj = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
               "1": "One", "\U0001F600": "Emoji: Grinning Face", "\u0080": "Control",
               "\u00f6": "Latin Small Letter O With Diaeresis"}
        order = [k for k in json.loads(jv.jcs(obj).decode("utf-8"), object_pairs_hook=lambda p: [k for k, _ in p])]
        self.assertEqual(order, ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"])
        # and UTF-8 byte order (version 1) puts the emoji last
        order1 = json.loads(jv.canonical_v1(obj).decode("utf-8"), object_pairs_hook=lambda p: [k for k, _ in p])
        self.assertEqual(order1[-1], "\U0001F600")

    def test_rfc8785_appendix_b_numbers(self):
        cases = {
            "0000000000000000": "0", "8000000000000000": "0", "0000000000000001": "5e-324",
            "8000000000000001": "-5e-324", "7fefffffffffffff": "1.7976931348623157e+308",
            "ffefffffffffffff": "-1.7976931348623157e+308", "4340000000000000": "9007199254740992",
            "c340000000000000": "-9007199254740992", "4430000000000000": "295147905179352830000",
            "44b52d02c7e14af5": "9.999999999999997e+22", "44b52d02c7e14af6": "1e+23",
            "44b52d02c7e14af7": "1.0000000000000001e+23", "444b1ae4d6e2ef4e": "999999999999999700000",
            "444b1ae4d6e2ef4f": "999999999999999900000", "444b1ae4d6e2ef50": "1e+21",
            "3eb0c6f7a0b5ed8c": "9.999999999999997e-7", "3eb0c6f7a0b5ed8d": "0.000001",
            "41b3de4355555553": "333333333.3333332", "41b3de4355555554": "333333333.33333325",
            "41b3de4355555555": "333333333.3333333", "41b3de4355555556": "333333333.3333334",
            "41b3de4355555557": "333333333.33333343", "becbf647612f3696": "-0.0000033333333333333333",
            "43143ff3c1cb0959": "1424953923781206.2",
        }
        for bits, want in cases.items():
            with self.subTest(bits=bits):
                self.assertEqual(jv.es_number(from_bits(bits)), want)
        for bits in ("7fffffffffffffff", "7ff0000000000000"):  # NaN, Infinity: not JSON
            with self.assertRaises(ValueError):
                jv.es_number(from_bits(bits))

    def test_strings_and_integers(self):
        self.assertEqual(jv.jcs({"a": "\x00\x1f\x7f\u2028/\u00e9"}), '{"a":"\\u0000\\u001f\x7f\u2028/\u00e9"}'.encode())
        self.assertEqual(jv.jcs([1, -0.0, 10**21, 1.5e-7]), b"[1,0,1e+21,1.5e-7]")
        with self.assertRaises(ValueError):
            jv.jcs({"a": "\ud800"})  # a lone surrogate has no UTF-8 form

    def test_serde_numbers_version_1(self):
        for x, want in ((1, "1"), (-7, "-7"), (1.0, "1.0"), (0.1, "0.1"), (1e16, "1e+16"), (1e300, "1e+300"), (1.5e-7, "1.5e-7"),
                        (123456.789, "123456.789"), (0.0001, "0.0001"), (-0.0, "-0.0")):
            with self.subTest(x=x):
                self.assertEqual(jv.serde_number(x), want)

    def test_strict_json(self):
        for bad in ('{"a":1,"a":2}', '[NaN]', '{"a":"\\udc00"}', '[1,]'):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                jv.strict_json(bad)


class Events(unittest.TestCase):
    def kind(self, text):
        try:
            jv.parse_event(0, {"seq": 1, "canonical": text})
        except jv.Reject as e:
            return e.kind
        return "ok"

    def test_versions_and_spellings(self):
        ev = {"kind": "operation", "actor": "gw", "at": "2026-11-01T08:00:00.000Z", "grant_id": "g",
              "data": {"\ufb33": 1, "\U0001F600": [1.5, -0.0, 1e21]}}
        v2 = jv.jcs(dict(ev, v=2)).decode()
        v1 = jv.canonical_v1(ev).decode()
        self.assertNotEqual(v1, v2.replace(',"v":2', ""))  # the two key orders differ here
        self.assertEqual((self.kind(v2), self.kind(v1)), ("ok", "ok"))
        self.assertEqual(self.kind(jv.jcs(ev).decode()), "NotCanonical")  # UTF-16 order without v
        self.assertEqual(self.kind(v2.replace("1e+21", "1E21")), "NotCanonical")
        self.assertEqual(self.kind(jv.jcs(dict(ev, v=3)).decode()), "NotCanonical")
        self.assertEqual(self.kind(jv.jcs(dict(ev, v=2, extra=1)).decode()), "NotCanonical")
        self.assertEqual(self.kind(jv.jcs(dict(ev, v=2, at="2026-11-01T08:00:00Z")).decode()), "NotCanonical")
        self.assertEqual(self.kind(jv.jcs({"kind": "operation", "at": ev["at"], "v": 2}).decode()), "NotAnEvent")
        self.assertEqual(self.kind(jv.jcs(dict(ev, v=2, state_before=1)).decode()), "NotAnEvent")
        self.assertEqual(self.kind("[1]"), "NotAnEvent")
        self.assertEqual(self.kind(v2[:-1]), "NotAnEvent")


class SignedNote(unittest.TestCase):
    VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
    NOTE = ("This is an example message.\n\n\u2014 example.com/foo "
            "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")

    def test_c2sp_example_verifies(self):
        vkey = jv.parse_vkey(self.VKEY)
        self.assertEqual((vkey[0], vkey[2]), ("example.com/foo", 0x01))
        text, res = jv.verify_note(self.NOTE.encode("utf-8"), [vkey])
        self.assertEqual(text, b"This is an example message.\n")
        self.assertEqual(res, [("example.com/foo", True)])

    def test_c2sp_example_altered(self):
        vkey = jv.parse_vkey(self.VKEY)
        _, res = jv.verify_note(self.NOTE.replace("example message", "example messagE").encode(), [vkey])
        self.assertEqual(res, [("example.com/foo", False)])
        _, res = jv.verify_note(self.NOTE.replace("foo Uw2", "bar Uw2").encode(), [vkey])
        self.assertEqual(res, [("example.com/bar", None)])  # unknown signer

    def test_vkey_hash_checked(self):
        with self.assertRaises(ValueError):
            jv.parse_vkey(self.VKEY.replace("530d903a", "530d903b"))
        with self.assertRaises(ValueError):
            jv.parse_vkey("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")


def build_multiproof(leaf_hashes, indices):
    """The multi-proof of `indices`: the same recursion, emitting the hashes verification takes."""
    idx = sorted(indices)
    out = []

    def mth(lo, hi):
        if hi - lo == 1:
            return leaf_hashes[lo]
        k = jv.largest_pow2_below(hi - lo)
        return jv.node_hash(mth(lo, lo + k), mth(lo + k, hi))

    def walk(lo, hi):
        i = bisect.bisect_left(idx, lo)
        if i == len(idx) or idx[i] >= hi:
            out.append(mth(lo, hi))
        elif hi - lo > 1:
            k = jv.largest_pow2_below(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

    walk(0, len(leaf_hashes))
    return out


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = jv.largest_pow2_below(len(leaves))
    return jv.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(m, leaves):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = jv.largest_pow2_below(n)
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


class Merkle(unittest.TestCase):
    def leaves(self, n):
        return [jv.leaf_hash(b"leaf %d" % i) for i in range(n)]

    def test_ct_reference_root(self):
        # the empty tree and a one-leaf tree of RFC 6962's test vectors
        self.assertEqual(hashlib.sha256(b"").hexdigest()[:8], "e3b0c442")
        self.assertEqual(jv.leaf_hash(b"").hex(), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")

    def test_inclusion_every_leaf_small_trees(self):
        for n in range(1, 33):
            leaves = self.leaves(n)
            root = mth(leaves)
            for m in range(n):
                path = audit_path(m, leaves)
                self.assertEqual(jv.root_from_inclusion(m, n, leaves[m], path), root)
                if path:
                    bad = list(path)
                    bad[0] = bytes(32)
                    self.assertNotEqual(jv.root_from_inclusion(m, n, leaves[m], bad), root)
                    self.assertIsNone(jv.root_from_inclusion(m, n, leaves[m], path + [bytes(32)]))
                self.assertIsNone(jv.root_from_inclusion(n, n, leaves[m], path))

    def test_multiproof_every_subset_small_trees(self):
        for n in range(1, 10):
            leaves = self.leaves(n)
            root = mth(leaves)
            for r in range(1, n + 1):
                for subset in itertools.combinations(range(n), r):
                    proof = build_multiproof(leaves, subset)
                    got = jv.multiproof_root(n, {i: leaves[i] for i in subset}, proof)
                    self.assertEqual(got, root, (n, subset))
                    if r == 1:  # one leaf: the same hashes as its audit path
                        self.assertEqual(sorted(proof), sorted(audit_path(subset[0], leaves)))
                    if r == n:
                        self.assertEqual(proof, [])

    def test_multiproof_rejections(self):
        rng = random.Random(7)
        for n in (2, 3, 5, 8, 13, 64, 100):
            leaves = self.leaves(n)
            root = mth(leaves)
            subset = sorted(rng.sample(range(n), max(1, n // 4)))
            proof = build_multiproof(leaves, subset)
            given = {i: leaves[i] for i in subset}
            self.assertEqual(jv.multiproof_root(n, given, proof), root)
            if proof:
                self.assertIsNone(jv.multiproof_root(n, given, proof[:-1]))  # runs short
                flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
                self.assertNotEqual(jv.multiproof_root(n, given, flipped), root)
                if len(proof) > 1:  # order matters
                    self.assertNotEqual(jv.multiproof_root(n, given, proof[::-1]), root)
            self.assertIsNone(jv.multiproof_root(n, given, proof + [root]))  # hash left over
            changed = dict(given)
            changed[subset[0]] = jv.leaf_hash(b"other")
            self.assertNotEqual(jv.multiproof_root(n, changed, proof), root)
            self.assertIsNone(jv.multiproof_root(subset[-1], given, proof))  # index beyond size
            if subset[0] + 1 < n and subset[0] + 1 not in given:  # moved to another index
                moved = {(i + 1 if i == subset[0] else i): h for i, h in given.items()}
                self.assertNotEqual(jv.multiproof_root(n, moved, proof), root)

    def test_multiproof_is_compact(self):
        leaves = self.leaves(1000)
        proof = build_multiproof(leaves, range(400, 700))
        self.assertLessEqual(len(proof), 2 * 10)


# ---------------------------------------------------------------------------------------
# End to end: bundles built here from the document, signed with keys made here


class Fixture:
    def __init__(self, fmt=2, witnesses=1):
        self.sk = nacl.signing.SigningKey(bytes(range(32)))
        self.pk = bytes(self.sk.verify_key)
        self.kid = jv.key_id(self.pk)
        self.wits = [(f"audit{i}.example/w", nacl.signing.SigningKey(bytes([i + 1]) * 32)) for i in range(witnesses)]
        self.fmt = fmt

    def event(self, kind, at, **kw):
        ev = {"kind": kind, "actor": "alice", "at": at, "v": 2, **kw}
        return jv.jcs(ev).decode("utf-8")

    def bundle(self, texts=None, tamper=None):
        g, r = "grant-1", "req-1"
        texts = texts or [
            self.event("request.submitted", "2026-11-01T08:00:00.000Z", request_id=r, state_after="pending"),
            self.event("request.decided", "2026-11-01T08:00:01.000Z", request_id=r, state_before="pending",
                       state_after="approved"),
            self.event("grant.issued", "2026-11-01T08:00:02.000Z", request_id=r, grant_id=g,
                       state_before="approved", state_after="active"),
            self.event("operation", "2026-11-01T08:00:03.000Z", grant_id=g, data={"gseq": 1, "n": 1.5}),
            self.event("grant.ended", "2026-11-01T08:00:04.000Z", grant_id=g, state_before="active",
                       state_after="ended"),
        ]
        log = [jv.leaf_hash(b"other event %d" % i) for i in range(11)]
        seqs = []
        for t in texts:  # interleave with other events of the log
            log.append(jv.leaf_hash(t.encode()))
            seqs.append(len(log))
            log.append(jv.leaf_hash(b"x%d" % len(log)))
        cp = {"log_id": "jitgate.example/plant-1", "tree_size": len(log), "root_hash": mth(log).hex(),
              "time": "2026-11-01T09:00:00.000Z", "key_id": self.kid}
        sig = self.sk.sign(jv.checkpoint_text(cp)).signature
        evs = []
        for s, t in zip(seqs, texts):
            e = {"seq": s, "canonical": t}
            if self.fmt == 1:
                e["proof"] = [h.hex() for h in audit_path(s - 1, log)]
            evs.append(e)
        b = {"format": jv.FORMATS[self.fmt - 1], "log_id": cp["log_id"], "grant_id": g,
             "checkpoint": {"checkpoint": cp, "signature": jv.b64(sig)}, "events": evs,
             "policies": {"p1": "permit(principal, action, resource);"},
             "keys": [{"key_id": self.kid, "public_key": jv.b64(self.pk)}],
             "attestation": {"key_id": self.kid, "events": len(evs),
                             "policy_sha256": {"p1": hashlib.sha256(b"permit(principal, action, resource);").hexdigest()},
                             "signature": ""}}
        if self.fmt == 2:
            b["multiproof"] = [jv.b64(h) for h in build_multiproof(log, [s - 1 for s in seqs])]
        cos = []
        for name, wsk in self.wits:
            pk = bytes(wsk.verify_key)
            t = 1793520000
            s = wsk.sign(jv.cosigned_message(jv.checkpoint_text(cp), t)).signature
            cos.append(f"\u2014 {name} " + jv.b64(jv.note_key_hash(name, 4, pk) + t.to_bytes(8, "big") + s))
        if cos:
            b["cosignatures"] = cos
        if tamper:
            tamper(b)
        b["attestation"]["signature"] = jv.b64(self.sk.sign(jv.attested_text(b)).signature)
        return b

    def vkeys(self):
        out = []
        for name, wsk in self.wits:
            pk = bytes(wsk.verify_key)
            out.append(f"{name}+{jv.note_key_hash(name, 4, pk).hex()}+{jv.b64(bytes([4]) + pk)}")
        return out

    def verify(self, b, witnesses=(), n=None):
        wk = [jv.parse_vkey(v) for v in witnesses]
        return jv.verify_bundle(json.dumps(b, ensure_ascii=False).encode(), {self.kid: self.pk}, wk, n)


class Bundles(unittest.TestCase):
    def kind(self, fx, b, *a):
        with self.assertRaises(jv.Reject) as cm:
            fx.verify(b, *a)
        return cm.exception.kind

    def test_valid_both_formats(self):
        for fmt in (1, 2):
            fx = Fixture(fmt)
            res = fx.verify(fx.bundle(), fx.vkeys())
            self.assertEqual((res["events"], res["witnesses"]), (5, ["audit0.example/w"]))

    def test_tampering(self):
        fx = Fixture(2)
        b = fx.bundle()
        changed = json.loads(json.dumps(b))
        changed["events"][3]["canonical"] = changed["events"][3]["canonical"].replace("alice", "alicf")
        self.assertEqual(self.kind(fx, changed), "MultiProof")
        dropped = json.loads(json.dumps(b))
        del dropped["events"][3]
        self.assertEqual(self.kind(fx, dropped), "Attestation")  # named by the count (§7 step 4)
        # dropped and re-attested (a dishonest exporter), the old multi-proof no longer fits
        redone = fx.bundle(tamper=lambda x: (x["events"].pop(3), x["attestation"].update(events=4)))
        self.assertEqual(self.kind(fx, redone), "MultiProof")
        swapped = json.loads(json.dumps(b))
        swapped["events"][1], swapped["events"][2] = swapped["events"][2], swapped["events"][1]
        self.assertEqual(self.kind(fx, swapped), "Order")
        forged = json.loads(json.dumps(b))
        forged["checkpoint"]["checkpoint"]["time"] = "2026-11-01T09:00:00.001Z"
        self.assertEqual(self.kind(fx, forged), "Checkpoint")
        self.assertEqual(self.kind(fx, b, fx.vkeys(), 2), "Witnesses")  # one witness, two required
        nowit = fx.bundle(tamper=lambda x: x.pop("cosignatures"))
        self.assertEqual(self.kind(fx, nowit, fx.vkeys()), "Witnesses")
        pol = json.loads(json.dumps(b))
        pol["policies"]["p1"] += " "
        self.assertEqual(self.kind(fx, pol), "Attestation")
        dup = json.dumps(b).replace('"grant_id": "grant-1"', '"grant_id": "grant-1", "grant_id": "grant-1"', 1)
        with self.assertRaises(jv.Reject) as cm:
            jv.verify_bundle(dup.encode(), {fx.kid: fx.pk})
        self.assertEqual(cm.exception.kind, "Json")

    def test_format1_inclusion_names_event(self):
        fx = Fixture(1)
        b = fx.bundle()
        b["events"][2]["proof"][0] = "00" * 32
        with self.assertRaises(jv.Reject) as cm:
            fx.verify(b)
        self.assertEqual(cm.exception.kind, "Inclusion")
        self.assertIn("events[2]", cm.exception.message)

    def test_not_canonical_and_chain(self):
        fx = Fixture(2)
        texts = [fx.event("request.submitted", "2026-11-01T08:00:00.000Z", request_id="r")]
        spaced = texts[0].replace(",", ", ", 1)
        self.assertEqual(self.kind(fx, fx.bundle([spaced])), "NotCanonical")
        self.assertEqual(self.kind(fx, fx.bundle(texts)), "Incomplete")  # no decision, no grant
        foreign = texts + [fx.event("request.decided", "2026-11-01T08:00:01.000Z", request_id="other")]
        self.assertEqual(self.kind(fx, fx.bundle(foreign)), "ForeignEvent")

    def recording_bundle(self, fx, tamper=None, chunks=(b"hello ", b"world"), complete=True, drop=None):
        g, r, sess = "grant-1", "req-1", "sess-1"
        texts = [
            fx.event("request.submitted", "2026-11-01T08:00:00.000Z", request_id=r),
            fx.event("request.decided", "2026-11-01T08:00:01.000Z", request_id=r, state_after="approved"),
            fx.event("grant.issued", "2026-11-01T08:00:02.000Z", grant_id=g, state_before="approved"),
        ]
        prev, off, recs = bytes(32), 0, []
        for i, data in enumerate(chunks):
            last = complete and i == len(chunks) - 1
            h = jv.chunk_hash(sess, i, off, last, prev, data)
            detail = {"index": i, "offset": off, "length": len(data), "last": last, "prev_hash": prev.hex(),
                      "hash": h.hex()}
            texts.append(fx.event("recording.chunk", "2026-11-01T08:00:03.000Z", grant_id=g,
                                  data={"gseq": i + 1, "session_id": sess, "detail": detail}))
            recs.append({"session_id": sess, "index": i, "data": jv.b64(data)})
            prev, off = h, off + len(data)

        if drop is not None:  # a chunk the gateway never logged: the log's chain has a gap
            del texts[3 + drop], recs[drop]

        def add(b):
            b["recordings"] = recs
            b["attestation"]["recording_chunks"] = [f"{r['session_id']}/{r['index']}" for r in recs]
            if tamper:
                tamper(b)
        return fx.bundle(texts, tamper=add)

    def test_recordings(self):
        fx = Fixture(2, witnesses=0)
        self.assertEqual(fx.verify(self.recording_bundle(fx))["sessions"], {"sess-1": 2})
        altered = self.recording_bundle(fx, lambda b: b["recordings"][1].update(data=jv.b64(b"worle")))
        self.assertEqual(self.kind(fx, altered), "Recording")
        removed = self.recording_bundle(fx, lambda b: b["recordings"].pop(0))
        with self.assertRaises(jv.Reject) as cm:
            fx.verify(removed)
        self.assertEqual(cm.exception.kind, "Recording")
        self.assertIn("removed after export", cm.exception.message)
        twice = self.recording_bundle(fx, lambda b: b["recordings"].append(dict(b["recordings"][0])))
        self.assertEqual(self.kind(fx, twice), "Recording")
        # a recording without its last chunk verifies, with a note
        res = fx.verify(self.recording_bundle(fx, complete=False))
        self.assertIn("the recording of session sess-1 has no last chunk (gateway cut or crashed)", res["notes"])
        # a chunk event that does not continue its session's chain
        with self.assertRaises(jv.Reject) as cm:
            fx.verify(self.recording_bundle(fx, chunks=(b"a", b"b", b"c"), drop=1))
        self.assertEqual(cm.exception.kind, "Recording")
        self.assertIn("does not continue its chain (expected index 1", cm.exception.message)

    def test_checkpoint_older_than_events(self):
        fx = Fixture(2, witnesses=0)
        r, g = "r", "g"

        def texts(last_kind, at, **kw):
            return [fx.event("request.submitted", "2026-11-01T08:00:00.000Z", request_id=r),
                    fx.event("request.decided", "2026-11-01T08:00:01.000Z", request_id=r),
                    fx.event("grant.issued", "2026-11-01T08:00:02.000Z", grant_id=g),
                    fx.event(last_kind, at, grant_id=g, **kw)]
        # checkpoint at 09:00:00.000; every event's time may be up to 5 minutes ahead of it
        # (§7 step 9), a server event's as well as a gateway-reported one's
        within = texts("grant.ended", "2026-11-01T09:05:00.000Z")
        self.assertTrue(fx.verify(fx.bundle(within, tamper=lambda b: b.update(grant_id=g)))["ok"])
        late = texts("grant.ended", "2026-11-01T09:05:00.001Z")
        self.assertEqual(self.kind(fx, fx.bundle(late, tamper=lambda b: b.update(grant_id=g))),
                         "CheckpointOlderThanEvents")
        skew = texts("operation", "2026-11-01T09:05:00.000Z", data={"gseq": 1})
        self.assertTrue(fx.verify(fx.bundle(skew, tamper=lambda b: b.update(grant_id=g)))["ok"])
        skew = texts("operation", "2026-11-01T09:05:00.001Z", data={"gseq": 1})
        self.assertEqual(self.kind(fx, fx.bundle(skew, tamper=lambda b: b.update(grant_id=g))),
                         "CheckpointOlderThanEvents")

    def test_cli_exit_codes(self):
        fx = Fixture(2)
        with tempfile.TemporaryDirectory() as d:
            bp, kp = os.path.join(d, "b.json"), os.path.join(d, "k.pub")
            with open(bp, "w") as f:
                json.dump(fx.bundle(), f)
            with open(kp, "w") as f:
                f.write(f"# test\njitgate-evidence-key v1 {fx.kid} {jv.b64(fx.pk)}\n")
            prog = [sys.executable, jv.__file__]
            ok = subprocess.run(prog + [bp, "--key", kp, "--json", "--witness-key", fx.vkeys()[0]],
                                capture_output=True, text=True)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertEqual(json.loads(ok.stdout)["witnesses"], ["audit0.example/w"])
            bad = subprocess.run(prog + [bp, "--key", kp, "--json", "--min-witnesses", "2", "--witness-key",
                                         fx.vkeys()[0]], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 1)
            self.assertTrue(json.loads(bad.stdout)["error"].startswith("Witnesses: "))
            missing = subprocess.run(prog + [bp, "--key", os.path.join(d, "none")], capture_output=True, text=True)
            self.assertEqual(missing.returncode, 2)


if __name__ == "__main__":
    unittest.main()
