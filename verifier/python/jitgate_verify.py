#!/usr/bin/env python3
"""Independent verifier of jitgate evidence bundles (docs/evidence.md, §7).

Written from docs/evidence.md and docs/evidence-bundle.schema.json alone, in another
language than the jitgate binary, so that an auditor need not trust the vendor's verifier.
Standard library plus PyNaCl (libsodium) for Ed25519.

    python3 jitgate_verify.py BUNDLE --key KEYFILE [--witness-key VKEY_OR_FILE ...]
                              [--min-witnesses N] [--json]

Exit status: 0 the bundle verifies, 1 it does not, 2 usage error or unreadable file.
"""

import argparse
import base64
import binascii
import bisect
import datetime
import hashlib
import json
import math
import os
import re
import sys

try:
    import nacl.bindings
    import nacl.exceptions
except ImportError:  # pragma: no cover - reported as a usage error by main()
    nacl = None

# ---------------------------------------------------------------------------------------
# Errors

FORMATS = ("jitgate-evidence-bundle/1", "jitgate-evidence-bundle/2")


class Reject(Exception):
    """The bundle does not verify; `kind` is the error name of docs/evidence.md §8."""

    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class Usage(Exception):
    """Bad command line, unreadable file or a key file that is not a key file (exit 2)."""


# Limits of §6 (defaults of `Limits`).
MAX_BUNDLE = 256 * 1024 * 1024
MAX_EVENTS = 1_000_000
MAX_EVENT = 1024 * 1024
MAX_PROOF = 64
MAX_POLICIES = 1024
MAX_POLICY = 1024 * 1024
MAX_ID = 256
MAX_KEYS = 64
MAX_CHUNKS = 1_000_000
MAX_CHUNK = 1024 * 1024
MAX_COSIGNATURES = 64  # schema: cosignatures maxItems
SKEW_MS = 5 * 60 * 1000  # §7 steps 7 and 9: the clock-skew allowance
# §7 step 7: the kinds whose times never go back (by more than SKEW_MS).
LIFECYCLE_KINDS = {"request.submitted", "request.decided", "approval.recorded", "request.approved",
                   "request.denied", "grant.issued", "grant.ended"}

RE_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
RE_KID = re.compile(r"[0-9a-f]{16}\Z")
RE_B64_32 = re.compile(r"[A-Za-z0-9+/]{43}=\Z")
RE_B64_64 = re.compile(r"[A-Za-z0-9+/]{86}==\Z")
RE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z\Z")
RE_LOG_ID = re.compile(r"[!-~]{1,255}\Z")
RE_ID = re.compile(r"[^\u0000-\u001f\u007f-\u009f]+\Z")
RE_SESSION = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
RE_LISTED = re.compile(r"([A-Za-z0-9._-]{1,128})/(0|[1-9][0-9]*)\Z")
RE_COSIG = re.compile(r"\u2014 ([^\s+]+) ([A-Za-z0-9+/]+={0,2})\Z")

# ---------------------------------------------------------------------------------------
# Small helpers


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def b64decode_canonical(text):
    """Standard, padded base64 whose re-encoding is the same text; None otherwise."""
    if not isinstance(text, str) or len(text) % 4:
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def b64(data):
    return base64.b64encode(data).decode("ascii")


def parse_time_ms(text):
    """Milliseconds since the epoch of a canonical RFC 3339 UTC time; None if not canonical."""
    m = RE_TIME.match(text) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(g) for g in m.groups())
    try:
        t = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return int(t.timestamp()) * 1000 + ms


def ed25519_verify(public_key, message, signature):
    """Strict Ed25519 (libsodium: canonical S, no small-order R or public key)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False


def key_id(public_key):
    return sha256(public_key)[:8].hex()


# ---------------------------------------------------------------------------------------
# JSON: RFC 8785 (JCS) and the version 1 canonical form


def _escape(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            out.append({8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(o, "\\u%04x" % o))
        elif 0xD800 <= o <= 0xDFFF:
            raise ValueError("lone surrogate in a string")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _shortest_digits(x):
    """(digits, n) with x = 0.digits × 10^n, digits the shortest round-trip digits (x > 0)."""
    r = repr(x)  # Python's repr is the shortest string that round-trips
    mant, _, exp = r.partition("e")
    e = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    n = len(ip) + e - lead_zeros
    digits = digits.rstrip("0")
    return digits, n


def es_number(x):
    """ECMAScript Number::toString for a finite double (RFC 8785 §3.2.2.3)."""
    if isinstance(x, int):
        x = float(x)  # may raise OverflowError: not representable
    if not math.isfinite(x):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    d, n = _shortest_digits(x)
    k = len(d)
    if k <= n <= 21:
        return d + "0" * (n - k)
    if 0 < n <= 21:
        return d[:n] + "." + d[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + d
    e = n - 1
    sign = "+" if e >= 0 else "-"
    mant = d if k == 1 else d[0] + "." + d[1:]
    return f"{mant}e{sign}{abs(e)}"


def serde_number(x):
    """A number as serde_json writes it (integers exactly; floats as ryu writes them)."""
    if isinstance(x, int):
        if not -(2**63) <= x < 2**64:
            raise ValueError("integer out of serde_json's range")
        return str(x)
    if not math.isfinite(x):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    if x < 0:
        return "-" + serde_number(-x)
    d, kk = _shortest_digits(x)
    length = len(d)
    e = kk - length
    if 0 <= e and kk <= 16:
        return d + "0" * e + ".0"
    if 0 < kk <= 16:
        return d[:kk] + "." + d[kk:]
    if -5 < kk <= 0:
        return "0." + "0" * (-kk) + d
    mant = d if length == 1 else d[0] + "." + d[1:]
    return f"{mant}e{'+' if kk > 0 else ''}{kk - 1}"  # the jitgate build writes 1e+16 (README)


def _encode(value, key_order, number):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, list):
        return "[" + ",".join(_encode(v, key_order, number) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: key_order(kv[0]))
        return "{" + ",".join(_escape(k) + ":" + _encode(v, key_order, number) for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def jcs(value):
    """RFC 8785 canonical bytes of a parsed JSON value: keys by UTF-16 code units."""
    return _encode(value, lambda k: k.encode("utf-16-be", "surrogatepass"), es_number).encode("utf-8")


def canonical_v1(value):
    """Version 1 canonical bytes: keys by UTF-8 bytes, scalars as serde_json writes them."""
    return _encode(value, lambda k: k.encode("utf-8", "surrogatepass"), serde_number).encode("utf-8")


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(value):
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False


def strict_json(text):
    """Parse JSON refusing duplicate keys, NaN/Infinity and lone surrogates; ValueError else."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _has_surrogate(value):
        raise ValueError("a string holds a lone UTF-16 surrogate")
    return value


# ---------------------------------------------------------------------------------------
# Merkle tree (RFC 9162 §2.1)


def leaf_hash(data):
    return sha256(b"\x00", data)


def node_hash(left, right):
    return sha256(b"\x01", left, right)


def largest_pow2_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 §2.1.3.2: the root the audit path leads to, or None if the path is invalid."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def multiproof_root(size, leaves, proof):
    """§2 multi-proof: evaluate ROOT(0, size) with `leaves` = {index: leaf hash}.

    Returns the root, or None when the proof runs short or has hashes left over."""
    indices = sorted(leaves)
    pos = [0]

    def root(lo, hi):
        i = bisect.bisect_left(indices, lo)
        if i == len(indices) or indices[i] >= hi:
            if pos[0] >= len(proof):
                raise IndexError
            pos[0] += 1
            return proof[pos[0] - 1]
        if hi - lo == 1:
            return leaves[lo]
        k = largest_pow2_below(hi - lo)
        return node_hash(root(lo, lo + k), root(lo + k, hi))

    if size == 0 or (indices and indices[-1] >= size):
        return None
    try:
        result = root(0, size)
    except IndexError:
        return None
    return result if pos[0] == len(proof) else None


# ---------------------------------------------------------------------------------------
# Keys, vkeys, signed notes


def read_key_file(path):
    """The evidence public key file (§4): {key id: 32-byte public key}. Usage on any problem."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise Usage(f"{path}: cannot read the key file: {e}") from None
    keys = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(" ")
        if len(parts) != 4 or parts[:2] != ["jitgate-evidence-key", "v1"]:
            raise Usage(f"{path}:{n}: not a line `jitgate-evidence-key v1 <key id> <base64 key>`")
        pk = b64decode_canonical(parts[3])
        if pk is None or len(pk) != 32:
            raise Usage(f"{path}:{n}: the key is not standard base64 of 32 bytes")
        if parts[2] != key_id(pk):
            raise Usage(f"{path}:{n}: key id {parts[2]} does not match its key ({key_id(pk)})")
        keys[parts[2]] = pk
    if not keys:
        raise Usage(f"{path}: no key in the key file")
    return keys


def note_key_hash(name, sig_type, public_key):
    return sha256(name.encode("utf-8"), b"\n", bytes([sig_type]), public_key)[:4]


def parse_vkey(text):
    """`<name>+<hex key hash>+<base64(type ‖ public key)>` → (name, key hash, type, key)."""
    parts = text.strip().split("+")
    if len(parts) < 3:
        raise ValueError("a vkey is <name>+<hex key hash>+<base64 key>")
    # the name cannot contain '+', but the base64 part can: split from the left twice
    name, hexhash, rest = parts[0], parts[1], "+".join(parts[2:])
    if not name or any(c.isspace() for c in name):
        raise ValueError("the vkey's name is empty or has white space")
    if not re.fullmatch(r"[0-9a-f]{8}", hexhash):
        raise ValueError("the vkey's key hash is not 8 lowercase hex digits")
    raw = b64decode_canonical(rest)
    if raw is None or len(raw) != 33:
        raise ValueError("the vkey's key is not standard base64 of a type byte and 32 bytes")
    sig_type, pk = raw[0], raw[1:]
    if note_key_hash(name, sig_type, pk).hex() != hexhash:
        raise ValueError("the vkey's key hash does not match its name and key")
    return name, bytes.fromhex(hexhash), sig_type, pk


def cosigned_message(note_text, timestamp):
    return b"cosignature/v1\ntime %d\n" % timestamp + note_text


def verify_note(note, vkeys):
    """Verify a C2SP signed note (bytes) against vkeys (as parse_vkey returns them).

    Returns (text, [(name, verified: bool|None)]) — None for a line by an unknown key.
    Raises ValueError when the note is malformed."""
    sep = note.rfind(b"\n\n")
    if sep < 0 or not note.endswith(b"\n"):
        raise ValueError("a signed note is text, an empty line, then signature lines")
    text, sigs = note[: sep + 1], note[sep + 2 :]
    results = []
    for line in sigs[:-1].split(b"\n"):
        name, raw = parse_signature_line(line.decode("utf-8"))
        results.append((name, _verify_sig_line(text, name, raw, vkeys)))
    return text, results


def parse_signature_line(line):
    m = RE_COSIG.match(line)
    raw = b64decode_canonical(m.group(2)) if m else None
    if raw is None or len(raw) < 5:
        raise ValueError(f"not a signature line `— <name> <base64>`: {line!r}")
    return m.group(1), raw


def _verify_sig_line(text, name, raw, vkeys):
    for vname, vhash, vtype, pk in vkeys:
        if vname != name or raw[:4] != vhash:
            continue
        if vtype == 0x01 and len(raw) == 68:
            return ed25519_verify(pk, text, raw[4:])
        if vtype == 0x04 and len(raw) == 76:
            return ed25519_verify(pk, cosigned_message(text, int.from_bytes(raw[4:12], "big")), raw[12:])
        return False
    return None


def checkpoint_text(cp):
    """The signed text of a checkpoint (§3): the C2SP tlog-checkpoint note body."""
    root = b64(bytes.fromhex(cp["root_hash"]))
    return f"{cp['log_id']}\n{cp['tree_size']}\n{root}\n{cp['time']}\n".encode("utf-8")


def read_witness_keys(args):
    """--witness-key values: a vkey, or a file of vkeys (one per line, '#' comments)."""
    out = []
    for arg in args:
        lines = [arg]
        if os.path.exists(arg):
            try:
                with open(arg, "rb") as f:
                    lines = f.read().decode("utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise Usage(f"{arg}: cannot read the witness key file: {e}") from None
        found = 0
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                vkey = parse_vkey(line)
            except ValueError as e:
                raise Usage(f"--witness-key {arg}: {e}") from None
            if vkey[2] != 0x04:
                raise Usage(f"--witness-key {arg}: a witness vkey has type 0x04 (cosignature)")
            out.append(vkey)
            found += 1
        if not found:
            raise Usage(f"--witness-key {arg}: no vkey")
    return out


# ---------------------------------------------------------------------------------------
# Step 1: limits and structure (the schema)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Shape:
    """Checks of the schema: wrong type / unknown or missing field → Json; spelling → Field."""

    @staticmethod
    def obj(v, path, required, optional=()):
        if not isinstance(v, dict):
            raise Reject("Json", f"{path}: expected an object")
        for k in v:
            if k not in required and k not in optional:
                raise Reject("Json", f"{path}: unknown field `{k}`")
        for k in required:
            if k not in v:
                raise Reject("Json", f"{path}: missing field `{k}`")
        return v

    @staticmethod
    def typed(v, path, t):
        ok = _is_int(v) and v >= 0 if t == "uint" else isinstance(v, {"str": str, "list": list, "dict": dict}[t])
        if t == "uint" and _is_int(v) and v >= 2**64:
            ok = False
        if not ok:
            raise Reject("Json", f"{path}: expected {dict(uint='a non-negative integer', str='a string', list='an array', dict='an object')[t]}")
        return v

    @staticmethod
    def spelled(v, path, regex, what):
        Shape.typed(v, path, "str")
        if not regex.match(v):
            raise Reject("Field", f"{path}: not {what}")
        return v


def check_structure(b):
    S = Shape
    S.obj(b, "bundle", ("format", "log_id", "grant_id", "checkpoint", "events", "policies", "keys", "attestation"),
          ("multiproof", "recordings", "cosignatures"))
    S.typed(b["format"], "format", "str")
    if b["format"] not in FORMATS:
        raise Reject("Format", f"format: {b['format']!r} is not a bundle format this verifier reads ({', '.join(FORMATS)})")
    fmt2 = b["format"] == FORMATS[1]
    S.spelled(b["log_id"], "log_id", RE_LOG_ID, "1-255 printable ASCII characters without spaces")
    S.spelled(b["grant_id"], "grant_id", RE_ID, "an id (1-256 characters, no control characters)")
    if len(b["grant_id"]) > MAX_ID:
        raise Reject("Field", "grant_id: longer than 256 characters")
    sc = S.obj(b["checkpoint"], "checkpoint", ("checkpoint", "signature"))
    cp = S.obj(sc["checkpoint"], "checkpoint.checkpoint", ("log_id", "tree_size", "root_hash", "time", "key_id"))
    S.spelled(cp["log_id"], "checkpoint.checkpoint.log_id", RE_LOG_ID, "1-255 printable ASCII characters without spaces")
    S.typed(cp["tree_size"], "checkpoint.checkpoint.tree_size", "uint")
    S.spelled(cp["root_hash"], "checkpoint.checkpoint.root_hash", RE_HEX64, "64 lowercase hex digits")
    S.spelled(cp["time"], "checkpoint.checkpoint.time", RE_TIME, "an RFC 3339 UTC time with milliseconds")
    if parse_time_ms(cp["time"]) is None:
        raise Reject("Field", "checkpoint.checkpoint.time: not a valid time")
    S.spelled(cp["key_id"], "checkpoint.checkpoint.key_id", RE_KID, "16 lowercase hex digits")
    _sig64(sc["signature"], "checkpoint.signature")
    if b["log_id"] != cp["log_id"]:
        raise Reject("Field", "log_id: differs from checkpoint.checkpoint.log_id")

    events = S.typed(b["events"], "events", "list")
    if not events:
        raise Reject("Field", "events: empty (a bundle has at least one event)")
    if len(events) > MAX_EVENTS:
        raise Reject("Field", f"events: more than {MAX_EVENTS}")
    for i, e in enumerate(events):
        p = f"events[{i}]"
        S.obj(e, p, ("seq", "canonical"), () if fmt2 else ("proof",))
        if not fmt2 and "proof" not in e:
            raise Reject("Json", f"{p}: missing field `proof`")
        S.typed(e["seq"], p + ".seq", "uint")
        if e["seq"] < 1:
            raise Reject("Field", f"{p}.seq: sequence numbers start at 1")
        S.typed(e["canonical"], p + ".canonical", "str")
        if len(e["canonical"].encode("utf-8")) > MAX_EVENT:
            raise Reject("Field", f"{p}.canonical: longer than {MAX_EVENT} bytes")
        if not fmt2:
            S.typed(e["proof"], p + ".proof", "list")
            if len(e["proof"]) > MAX_PROOF:
                raise Reject("Field", f"{p}.proof: more than {MAX_PROOF} hashes")
            for j, h in enumerate(e["proof"]):
                S.spelled(h, f"{p}.proof[{j}]", RE_HEX64, "64 lowercase hex digits")
    if "multiproof" in b:
        mp = S.typed(b["multiproof"], "multiproof", "list")
        if not fmt2 and mp:
            raise Reject("Field", "multiproof: a format 1 bundle has no multi-proof")
        for j, h in enumerate(mp):
            _b64_32(h, f"multiproof[{j}]")

    pol = S.typed(b["policies"], "policies", "dict")
    if len(pol) > MAX_POLICIES:
        raise Reject("Field", f"policies: more than {MAX_POLICIES}")
    for k, v in pol.items():
        _id(k, f"policies[{k!r}] (id)")
        S.typed(v, f"policies[{k!r}]", "str")
        if len(v.encode("utf-8")) > MAX_POLICY:
            raise Reject("Field", f"policies[{k!r}]: longer than {MAX_POLICY} bytes")

    keys = S.typed(b["keys"], "keys", "list")
    if not keys or len(keys) > MAX_KEYS:
        raise Reject("Field", f"keys: between 1 and {MAX_KEYS} keys")
    for i, k in enumerate(keys):
        S.obj(k, f"keys[{i}]", ("key_id", "public_key"))
        S.spelled(k["key_id"], f"keys[{i}].key_id", RE_KID, "16 lowercase hex digits")
        _b64_32(k["public_key"], f"keys[{i}].public_key")

    at = S.obj(b["attestation"], "attestation", ("key_id", "events", "policy_sha256", "signature"), ("recording_chunks",))
    S.spelled(at["key_id"], "attestation.key_id", RE_KID, "16 lowercase hex digits")
    S.typed(at["events"], "attestation.events", "uint")
    S.typed(at["policy_sha256"], "attestation.policy_sha256", "dict")
    for k, v in at["policy_sha256"].items():
        _id(k, f"attestation.policy_sha256[{k!r}] (id)")
        S.spelled(v, f"attestation.policy_sha256[{k!r}]", RE_HEX64, "64 lowercase hex digits")
    if "recording_chunks" in at:
        for i, c in enumerate(S.typed(at["recording_chunks"], "attestation.recording_chunks", "list")):
            S.spelled(c, f"attestation.recording_chunks[{i}]", RE_LISTED, "`<session>/<index>`")
    _sig64(at["signature"], "attestation.signature")

    if "recordings" in b:
        recs = S.typed(b["recordings"], "recordings", "list")
        if len(recs) > MAX_CHUNKS:
            raise Reject("Field", f"recordings: more than {MAX_CHUNKS} chunks")
        for i, r in enumerate(recs):
            p = f"recordings[{i}]"
            S.obj(r, p, ("session_id", "index", "data"))
            S.spelled(r["session_id"], p + ".session_id", RE_SESSION, "a session id ([A-Za-z0-9._-], 1-128)")
            S.typed(r["index"], p + ".index", "uint")
            S.typed(r["data"], p + ".data", "str")
            raw = b64decode_canonical(r["data"])
            if raw is None:
                raise Reject("Field", f"{p}.data: not canonical standard base64")
            if len(raw) > MAX_CHUNK:
                raise Reject("Field", f"{p}.data: more than {MAX_CHUNK} bytes")
    if "cosignatures" in b:
        cos = S.typed(b["cosignatures"], "cosignatures", "list")
        if len(cos) > MAX_COSIGNATURES:
            raise Reject("Field", f"cosignatures: more than {MAX_COSIGNATURES}")
        for i, c in enumerate(cos):
            S.typed(c, f"cosignatures[{i}]", "str")
            try:
                parse_signature_line(c)
            except ValueError:
                raise Reject("Field", f"cosignatures[{i}]: not a signature line `— <name> <base64>`") from None


def _sig64(v, path):
    Shape.spelled(v, path, RE_B64_64, "standard base64 of 64 bytes")
    if b64decode_canonical(v) is None:
        raise Reject("Field", f"{path}: not canonical base64")


def _b64_32(v, path):
    Shape.spelled(v, path, RE_B64_32, "standard base64 of 32 bytes")
    if b64decode_canonical(v) is None:
        raise Reject("Field", f"{path}: not canonical base64")


def _id(v, path):
    if not RE_ID.match(v) or len(v) > MAX_ID:
        raise Reject("Field", f"{path}: not an id (1-256 characters, no control characters)")


# ---------------------------------------------------------------------------------------
# Steps 2-9


def where(i, e):
    return f"events[{i}] (seq {e['seq']})"


CANONICAL_EVENT_FIELDS = {"kind", "actor", "at", "request_id", "approval_id", "grant_id",
                          "state_before", "state_after", "data", "v"}


def parse_event(i, e):
    """Step 5: the text parses as a jitgate event and re-encodes to the same bytes."""
    text = e["canonical"]
    try:
        ev = strict_json(text)
    except ValueError as err:
        raise Reject("NotAnEvent", f"{where(i, e)}: not JSON: {err}") from None
    if not isinstance(ev, dict):
        raise Reject("NotAnEvent", f"{where(i, e)}: not a JSON object")
    for f in ("kind", "actor", "at"):
        if not isinstance(ev.get(f), str):
            raise Reject("NotAnEvent", f"{where(i, e)}: `{f}` missing or not a string")
    for f in ev:  # an unknown field is dropped by re-encoding: NotCanonical (as the Rust verifier)
        if f not in CANONICAL_EVENT_FIELDS:
            raise Reject("NotCanonical", f"{where(i, e)}: unknown field `{f}`")
    for f in ("request_id", "approval_id", "grant_id", "state_before", "state_after"):
        if f in ev and not isinstance(ev[f], str):
            raise Reject("NotAnEvent", f"{where(i, e)}: `{f}` is not a string")
    if parse_time_ms(ev["at"]) is None:
        raise Reject("NotCanonical", f"{where(i, e)}: `at` is not an RFC 3339 UTC time with milliseconds")
    version = ev.get("v", 1)
    try:
        if version == 2 and _is_int(ev["v"]):
            again = jcs(ev)
        elif "v" not in ev:
            again = canonical_v1(ev)
        else:
            raise Reject("NotCanonical", f"{where(i, e)}: unknown canonical form version {ev['v']!r}")
    except (ValueError, OverflowError) as err:
        raise Reject("NotCanonical", f"{where(i, e)}: cannot be canonicalised: {err}") from None
    if again != text.encode("utf-8"):
        raise Reject("NotCanonical", f"{where(i, e)}: not in canonical form (version {version})")
    return ev


SESSION_KINDS = ("session.", "operation", "credential.", "recording.")


def check_chain(b, events, parsed):
    """Step 6, as far as docs/evidence.md states it (see README: what is not checked)."""
    grant = b["grant_id"]
    first = parsed[0]
    if first["kind"] != "request.submitted":
        raise Reject("Incomplete", f"{where(0, events[0])}: the bundle does not start with `request.submitted`")
    request = first.get("request_id")
    decided = issued = ended = None
    state = None
    last_at = None
    for i, (e, ev) in enumerate(zip(events, parsed)):
        w = where(i, e)
        kind = ev["kind"]
        if "grant_id" in ev and ev["grant_id"] != grant:
            raise Reject("ForeignEvent", f"{w}: names grant {ev['grant_id']}, not {grant}")
        if "request_id" in ev and request is not None and ev["request_id"] != request:
            raise Reject("ForeignEvent", f"{w}: names request {ev['request_id']}, not {request}")
        if "grant_id" not in ev and ("request_id" not in ev or request is None):
            raise Reject("ForeignEvent", f"{w}: names neither this request nor this grant")
        if kind == "request.submitted" and i > 0:
            raise Reject("Causality", f"{w}: a second `request.submitted`")
        if kind == "request.decided":
            if decided is not None:
                raise Reject("Causality", f"{w}: the request is decided twice")
            decided = i
        if kind == "grant.issued":
            if issued is not None:
                raise Reject("Causality", f"{w}: the grant is issued twice")
            if decided is None:
                raise Reject("Causality", f"{w}: the grant is issued before the request was decided")
            issued = i
        if kind.startswith(SESSION_KINDS) and issued is None:
            raise Reject("Causality", f"{w}: `{kind}` before the grant was issued")
        if kind == "grant.ended":
            if issued is None:
                raise Reject("Causality", f"{w}: the grant ended before it was issued")
            ended = i
        if kind.startswith("teardown.") and ended is None:
            raise Reject("Causality", f"{w}: `{kind}` before `grant.ended`")
        # §7 step 7, states: the state starts empty; state_before must equal it; every event
        # but approval.recorded moves it to its state_after.
        if "state_before" in ev and ev["state_before"] != state:
            raise Reject("Causality", f"{w}: state_before {ev['state_before']!r}, but the request was {state!r}")
        if "state_after" in ev and kind != "approval.recorded":
            state = ev["state_after"]
        if kind in LIFECYCLE_KINDS:
            at = parse_time_ms(ev["at"])
            if last_at is not None and at + SKEW_MS < last_at:
                raise Reject("Causality", f"{w}: its time {ev['at']} is before the previous lifecycle event's")
            last_at = at
    if decided is None:
        raise Reject("Incomplete", "the request's decision (`request.decided`) is missing")
    if issued is None:
        raise Reject("Incomplete", "`grant.issued` is missing")


def chunk_hash(session, index, offset, last, prev, data):
    s = session.encode("utf-8")
    return sha256(b"jitgate-recording-chunk/1\n", len(s).to_bytes(4, "big"), s, index.to_bytes(8, "big"),
                  offset.to_bytes(8, "big"), b"\x01" if last else b"\x00", prev, data)


def check_recordings(b, events, parsed, notes):
    """Step 7a (§6a)."""
    chunks = {}  # (session, index) -> (seq, detail)
    chains = {}  # session -> (next index, next offset, prev hash, ended)
    for i, (e, ev) in enumerate(zip(events, parsed)):
        if ev["kind"] != "recording.chunk":
            continue
        w = where(i, e)
        data = ev.get("data")
        d = data.get("detail") if isinstance(data, dict) else None
        sess = data.get("session_id") if isinstance(data, dict) else None
        ok = isinstance(sess, str) and isinstance(d, dict)
        if ok:
            ok = all(_is_int(d.get(f)) and d[f] >= 0 for f in ("index", "offset", "length")) \
                and isinstance(d.get("last"), bool) \
                and all(isinstance(d.get(f), str) and RE_HEX64.match(d[f]) for f in ("prev_hash", "hash"))
        if not ok:
            raise Reject("Recording", f"{w}: not a recording chunk event (data.session_id, data.detail)")
        idx, off, prev, ended = chains.get(sess, (0, 0, "0" * 64, False))
        if ended:
            raise Reject("Recording", f"{w}: chunk {d['index']} of session {sess} after its last chunk")
        if d["index"] != idx or d["offset"] != off or d["prev_hash"] != prev:
            raise Reject("Recording", f"{w}: chunk {d['index']} of session {sess} does not continue its chain "
                                      f"(expected index {idx}, offset {off}, previous hash {prev[:16]}…)")
        chains[sess] = (idx + 1, off + d["length"], d["hash"], d["last"])
        chunks[(sess, idx)] = (e["seq"], d)
    present = set()
    for i, r in enumerate(b.get("recordings", [])):
        key = (r["session_id"], r["index"])
        if key in present:
            raise Reject("Recording", f"recordings[{i}]: chunk {r['index']} of session {r['session_id']} is given twice")
        present.add(key)
        if key not in chunks:
            raise Reject("Recording", f"recordings[{i}]: chunk {r['index']} of session {r['session_id']} has no "
                                      "recording.chunk event in the bundle")
        seq, d = chunks[key]
        data = b64decode_canonical(r["data"])
        h = chunk_hash(r["session_id"], r["index"], d["offset"], d["last"], bytes.fromhex(d["prev_hash"]), data)
        if len(data) != d["length"] or h.hex() != d["hash"]:
            raise Reject("Recording", f"recordings[{i}]: chunk {r['index']} of session {r['session_id']}: its "
                                      f"{len(data)} bytes do not match the hash logged in event seq {seq}: "
                                      "the recording was altered")
    for i, c in enumerate(b["attestation"].get("recording_chunks", [])):
        s, _, n = c.rpartition("/")
        if (s, int(n)) not in present:
            raise Reject("Recording", f"attestation.recording_chunks[{i}]: chunk {c} was exported but is missing "
                                      "from recordings[]: removed after export")
    for (s, n) in sorted(set(chunks) - present):
        notes.append(f"recording chunk {n} of session {s} is logged but its bytes are not in the bundle")
    for s, (_, _, _, ended) in sorted(chains.items()):
        if not ended:
            notes.append(f"the recording of session {s} has no last chunk (gateway cut or crashed)")
    return {s: v[0] for s, v in chains.items()}


def attested_text(b):
    """§6: `jitgate-evidence-bundle v1\\n<hex SHA-256 of E>\\n`."""
    parts = []

    def f(value):
        v = str(value).encode("utf-8")
        parts.append(b"%d:" % len(v) + v + b"\n")

    sc, cp = b["checkpoint"], b["checkpoint"]["checkpoint"]
    fmt2 = b["format"] == FORMATS[1]
    for v in (b["format"], b["log_id"], b["grant_id"], cp["log_id"], cp["tree_size"], cp["root_hash"],
              cp["time"], cp["key_id"], sc["signature"], len(b["events"])):
        f(v)
    for e in b["events"]:
        f(e["seq"])
        f(hashlib.sha256(e["canonical"].encode("utf-8")).hexdigest())
        proof = [] if fmt2 else e["proof"]
        f(len(proof))
        for h in proof:
            f(h)
    if fmt2 and b.get("multiproof"):  # an empty multi-proof adds nothing (as the Rust exporter)
        mp = b["multiproof"]
        f("multiproof")
        f(len(mp))
        for h in mp:
            f(h)
    f(len(b["policies"]))
    for pid in sorted(b["policies"], key=lambda s: s.encode("utf-8")):
        f(pid)
        f(hashlib.sha256(b["policies"][pid].encode("utf-8")).hexdigest())
    f(len(b["keys"]))
    for k in b["keys"]:
        f(k["key_id"])
        f(k["public_key"])
    at = b["attestation"]
    f(at["key_id"])
    f(at["events"])
    f(len(at["policy_sha256"]))
    for pid in sorted(at["policy_sha256"], key=lambda s: s.encode("utf-8")):
        f(pid)
        f(at["policy_sha256"][pid])
    recs, listed = b.get("recordings", []), at.get("recording_chunks", [])
    if recs or listed:
        f("recordings")
        f(len(recs))
        for r in recs:
            f(r["session_id"])
            f(r["index"])
            f(hashlib.sha256(r["data"].encode("ascii")).hexdigest())
        f(len(listed))
        for c in listed:
            f(c)
    if b.get("cosignatures"):
        f("cosignatures")
        f(len(b["cosignatures"]))
        for c in b["cosignatures"]:
            f(c)
    return b"jitgate-evidence-bundle v1\n" + hashlib.sha256(b"".join(parts)).hexdigest().encode("ascii") + b"\n"


def _check_count(at, events):
    if at["events"] != len(events):
        raise Reject("Attestation", f"attestation.events: {at['events']} events exported, the bundle has "
                                    f"{len(events)}: events removed or added after export")


def verify_bundle(data, trusted, witness_keys=(), min_witnesses=None):
    """Verify bundle bytes. Returns a summary dict; raises Reject."""
    notes = []
    # 1. Limits and structure
    if len(data) > MAX_BUNDLE:
        raise Reject("TooLarge", f"{len(data)} bytes, over the limit of {MAX_BUNDLE}")
    try:
        b = strict_json(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise Reject("Json", f"not UTF-8: {e}") from None
    except ValueError as e:
        raise Reject("Json", str(e)) from None
    check_structure(b)
    fmt2 = b["format"] == FORMATS[1]
    sc, cp = b["checkpoint"], b["checkpoint"]["checkpoint"]
    events = b["events"]
    at = b["attestation"]

    # 2. Trusted key; the keys list names exactly the checkpoint and attestation keys
    if cp["key_id"] not in trusted:
        raise Reject("Checkpoint", f"UnknownKey: checkpoint: signed by key {cp['key_id']}, which is not in the key file")
    # The signature of step 7, checked here as the Rust verifier does: a forged checkpoint is
    # named `Checkpoint`, not `Inclusion`/`MultiProof` (docs/evidence.md §7 lists it as step 7).
    if not ed25519_verify(trusted[cp["key_id"]], checkpoint_text(cp), b64decode_canonical(sc["signature"])):
        raise Reject("Checkpoint", "BadSignature: checkpoint: the signature does not verify: the checkpoint was altered")
    listed = [k["key_id"] for k in b["keys"]]
    if len(set(listed)) != len(listed) or set(listed) != {cp["key_id"], at["key_id"]}:
        raise Reject("Field", f"keys: must name exactly the checkpoint and attestation keys, names {listed}")
    for i, k in enumerate(b["keys"]):
        if key_id(b64decode_canonical(k["public_key"])) != k["key_id"]:
            raise Reject("Field", f"keys[{i}]: key id {k['key_id']} does not match its public key")

    # 3. Order and coverage
    for i in range(1, len(events)):
        if events[i]["seq"] <= events[i - 1]["seq"]:
            raise Reject("Order", f"{where(i, events[i])}: seq not after the previous event's {events[i - 1]['seq']}")
    for i, e in enumerate(events):
        if e["seq"] > cp["tree_size"]:
            raise Reject("CheckpointOlderThanEvents", f"{where(i, e)}: beyond the checkpoint's tree size {cp['tree_size']}")

    root = bytes.fromhex(cp["root_hash"])
    leaves = [leaf_hash(e["canonical"].encode("utf-8")) for e in events]
    # 4. Inclusion (format 1), then 5. canonical events; format 2: 5 then the multi-proof
    if not fmt2:
        for i, e in enumerate(events):
            proof = [bytes.fromhex(h) for h in e["proof"]]
            if root_from_inclusion(e["seq"] - 1, cp["tree_size"], leaves[i], proof) != root:
                raise Reject("Inclusion", f"{where(i, e)}: not in the log the checkpoint signed "
                                          "(the event text or its proof was altered)")
    parsed = [parse_event(i, e) for i, e in enumerate(events)]
    if fmt2:
        # §7 step 4: "events removed or added are named by the attestation's count instead"
        _check_count(at, events)
        proof = [b64decode_canonical(h) for h in b.get("multiproof", [])]
        got = multiproof_root(cp["tree_size"], {e["seq"] - 1: leaves[i] for i, e in enumerate(events)}, proof)
        if got != root:
            raise Reject("MultiProof", "events: the multi-proof of the events does not lead to the checkpoint's root "
                                       "(an event's text or seq, or the proof, was altered)")
    v1 = sum(1 for ev in parsed if "v" not in ev)
    if v1:
        notes.append(f"{v1} event(s) checked under canonical form version 1")

    # 6. One grant's chain
    check_chain(b, events, parsed)
    # 7a. Recordings
    sessions = check_recordings(b, events, parsed, notes)

    # 7. Checkpoint time (its signature was checked with the key, step 2)
    cp_ms = parse_time_ms(cp["time"])
    for i, (e, ev) in enumerate(zip(events, parsed)):
        if parse_time_ms(ev["at"]) > cp_ms + SKEW_MS:
            raise Reject("CheckpointOlderThanEvents", f"{where(i, e)}: the event ({ev['at']}) is later than the "
                                                      f"checkpoint ({cp['time']})")

    # 8. Attestation
    _check_count(at, events)
    pol, dig = b["policies"], at["policy_sha256"]
    for pid in dig:
        if pid not in pol:
            raise Reject("Attestation", f"attestation.policy_sha256[{pid!r}]: the policy text was removed")
    for pid, text in pol.items():
        if pid not in dig:
            raise Reject("Attestation", f"policies[{pid!r}]: a policy text added after export")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != dig[pid]:
            raise Reject("Attestation", f"policies[{pid!r}]: the policy text changed after export")
    if at["key_id"] not in trusted:
        raise Reject("Attestation", f"attestation.key_id: key {at['key_id']} is not in the key file")
    if not ed25519_verify(trusted[at["key_id"]], attested_text(b), b64decode_canonical(at["signature"])):
        raise Reject("Attestation", "attestation.signature: does not verify over the attested text: "
                                    "the bundle was changed after export")

    # 9. Witnesses
    cosigned = []
    lines = b.get("cosignatures", [])
    if witness_keys:
        note = checkpoint_text(cp)
        for i, line in enumerate(lines):
            name, raw = parse_signature_line(line)
            ok = _verify_sig_line(note, name, raw, [w for w in witness_keys if w[2] == 0x04])
            if ok is None:
                notes.append(f"cosignatures[{i}]: by {name}, not a trusted witness (ignored)")
            elif not ok:
                raise Reject("Witnesses", f"cosignatures[{i}]: the cosignature of trusted witness {name} does not "
                                          "verify (altered, or made for another checkpoint)")
            elif name not in cosigned:
                cosigned.append(name)
        need = 1 if min_witnesses is None else min_witnesses
        if len(cosigned) < need:
            raise Reject("Witnesses", f"{len(cosigned)} trusted witness(es) cosigned the checkpoint, "
                                      f"--min-witnesses requires {need}")
    elif lines:
        notes.append(f"{len(lines)} cosignature(s) not checked (no --witness-key)")
    return {"ok": True, "grant_id": b["grant_id"], "events": len(events), "witnesses": cosigned,
            "format": b["format"], "tree_size": cp["tree_size"], "checkpoint_key": cp["key_id"],
            "attestation_key": at["key_id"], "sessions": sessions, "notes": notes}


# ---------------------------------------------------------------------------------------
# Command line


def main(argv=None):
    ap = argparse.ArgumentParser(description="Verify a jitgate evidence bundle offline (docs/evidence.md §7).")
    ap.add_argument("bundle")
    ap.add_argument("--key", required=True, help="the evidence public key file (trusted channel)")
    ap.add_argument("--witness-key", action="append", default=[], help="a witness vkey, or a file of vkeys")
    ap.add_argument("--min-witnesses", type=int, help="distinct trusted witnesses required (default 1)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    try:
        if nacl is None:
            raise Usage("PyNaCl is not installed: pip install -r verifier/python/requirements.txt")
        if args.min_witnesses is not None and (args.min_witnesses < 0 or not args.witness_key):
            raise Usage("--min-witnesses needs a non-negative number and at least one --witness-key")
        trusted = read_key_file(args.key)
        witnesses = read_witness_keys(args.witness_key)
        try:
            with open(args.bundle, "rb") as f:
                data = f.read(MAX_BUNDLE + 1)
        except OSError as e:
            raise Usage(f"{args.bundle}: cannot read the bundle: {e}") from None
    except Usage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = verify_bundle(data, trusted, witnesses, args.min_witnesses)
    except Reject as e:
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}, ensure_ascii=False))
        print(f"bundle REJECTED: {args.bundle}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: result[k] for k in ("ok", "grant_id", "events", "witnesses", "notes")}, ensure_ascii=False))
    else:
        print(f"bundle OK: grant {result['grant_id']}, {result['events']} events ({result['format']}), "
              f"checkpoint of {result['tree_size']} events by key {result['checkpoint_key']}, "
              f"attested by key {result['attestation_key']}")
        print("witnesses that cosigned: " + (", ".join(result["witnesses"]) or "none checked"))
        for n in result["notes"]:
            print("note: " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
