#!/usr/bin/env bash
# The two evidence verifiers on one corpus (docs/evidence.md §6): the Rust verifier writes a
# corpus of bundles with its verdicts (crates/jitgate-evidence/examples/bundle_corpus.rs:
# small and large grants, a key rotation, old canonical-form events, format 1, witnesses, and
# each kind of tampering); every accepted bundle must validate against the published JSON
# Schema, and the independent Python verifier (verifier/python), written from the
# specification alone, must reach the same verdict on every case.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# jsonschema is already there when schemathesis is (it depends on it); any 4.x will do.
python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install --quiet 'jsonschema>=4.18,<5'
python3 -m pip install --quiet -r verifier/python/requirements.txt
cargo run -q --locked -p jitgate-evidence --example bundle_corpus -- "$dir"
python3 .ci/bundle_schema_check.py docs/evidence-bundle.schema.json "$dir"
python3 -m unittest discover -s verifier/python -p 'test_*.py'
python3 verifier/python/agree.py "$dir"
