#!/usr/bin/env bash
# The API contract: schemathesis (pinned) runs every check against /openapi.json of a
# quickstart server (sample inventory) called with a workload API key. Fails on any
# undocumented status, server error or other contract violation.
#
# `positive_data_acceptance` is left out: it expects every schema-valid body to be accepted,
# and the schema cannot say every rule of the domain (a duration like `2h`, no control
# characters in free text, a request's state) — those are refused with their documented
# 4xx codes, which the other checks hold the server to.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
command -v st >/dev/null 2>&1 && st --version | grep -q "$SCHEMATHESIS_VERSION" \
    || python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"

cargo build --locked -p jitgate
bin="${CARGO_TARGET_DIR:-target}/debug/jitgate"
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$bin" up --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT

# Ready when /healthz answers and the bootstrap credentials are written (bounded wait).
creds="$work/data/bootstrap-credentials.toml"
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && [ -s "$creds" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null

key=$(sed -n 's/^svc-historian = "\(.*\)"$/\1/p' "$creds")
[ -n "$key" ] || { echo "no API key for svc-historian in the bootstrap credentials" >&2; exit 1; }

st run "http://127.0.0.1:$port/openapi.json" \
    --checks all --exclude-checks positive_data_acceptance \
    --header "Authorization: Bearer $key" \
    --max-examples "${JITGATE_SCHEMATHESIS_EXAMPLES:-25}" \
    --workers 2 \
    --seed 1
# The server survived the run.
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null
