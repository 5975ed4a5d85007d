#!/usr/bin/env bash
# Run every cargo-fuzz target for a fixed time; CI calls this (`fuzz/run.sh 60`).
# Exits non-zero when a target crashes (the input is left in fuzz/artifacts/<target>/).
#
# Works on the stable toolchain: cargo-fuzz needs nightly-only flags (-Z sanitizer=...,
# sancov passes), and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. A nightly toolchain
# is used instead when one is installed and JITGATE_FUZZ_TOOLCHAIN=nightly is set.
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
    ''|*[!0-9]*) echo "usage: fuzz/run.sh <seconds per target>" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

toolchain=()
if [ "${JITGATE_FUZZ_TOOLCHAIN:-}" = nightly ]; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

status=0
for target in $(cargo "${toolchain[@]}" fuzz list); do
    echo "==> fuzzing $target for ${seconds}s"
    # New inputs go to corpus/<target> (not committed); seeds/<target> is read only.
    mkdir -p "corpus/$target" "seeds/$target"
    if ! cargo "${toolchain[@]}" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        echo "!!! $target crashed; reproduce with:" >&2
        echo "    RUSTC_BOOTSTRAP=1 cargo fuzz run $target fuzz/artifacts/$target/<crash file>" >&2
        status=1
    fi
done
exit "$status"
