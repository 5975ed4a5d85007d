"""Every bundle of the corpus that the Rust verifier accepts must validate against the
published JSON Schema (docs/evidence-bundle.schema.json), and bundles broken in shape must not:
the schema is part of the specification an independent verifier is written from."""

import copy
import json
import sys
from pathlib import Path

import jsonschema

schema = json.loads(Path(sys.argv[1]).read_text())
corpus = Path(sys.argv[2])
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
expected = json.loads((corpus / "expected.json").read_text())
failures = 0
accepted = 0
for case, verdict in sorted(expected.items()):
    bundle = json.loads((corpus / f"{case}.json").read_text())
    errors = sorted(validator.iter_errors(bundle), key=str)
    if verdict["ok"] and errors:
        failures += 1
        print(f"{case}: accepted by the verifier but not valid under the schema: {errors[0].message}")
    if verdict["ok"]:
        accepted += 1
        # Shape breaks the schema must catch.
        for name, edit in [
            ("unknown field", lambda b: b.__setitem__("comment", "hi")),
            ("uppercase root hash", lambda b: b["checkpoint"]["checkpoint"].__setitem__(
                "root_hash", b["checkpoint"]["checkpoint"]["root_hash"].upper())),
            ("no events", lambda b: b.__setitem__("events", [])),
            ("seq 0", lambda b: b["events"][0].__setitem__("seq", 0)),
            ("bad format", lambda b: b.__setitem__("format", "jitgate-evidence-bundle/9")),
        ]:
            broken = copy.deepcopy(bundle)
            edit(broken)
            if validator.is_valid(broken):
                failures += 1
                print(f"{case} with {name}: the schema does not refuse it")
print(f"schema: {accepted} accepted bundles valid, shape breaks refused; {failures} failure(s)")
sys.exit(1 if failures else 0)
