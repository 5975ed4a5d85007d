#!/usr/bin/env bash
# Run every fuzz target for a fixed time; CI calls this (`fuzz/run.sh 20`).
# Exits non-zero when a target crashes (the input is left in fuzz/artifacts/<target>/).
#
# Works on the stable toolchain: libFuzzer builds need nightly-only flags (-Z sanitizer=...,
# sancov passes), and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. A nightly toolchain
# is used instead when one is installed and JITGATE_FUZZ_TOOLCHAIN=nightly is set.
#
# With cargo-fuzz installed, it builds and runs the targets. Without it (a fresh CI machine,
# where installing it costs minutes), the same build is made with cargo directly, with the
# flags cargo-fuzz passes (sancov module pass, inline 8-bit counters, PC table, traced
# compares, stack depth, `--cfg fuzzing`, AddressSanitizer, debug assertions), and each
# target binary is run with the same libFuzzer arguments.
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
    ''|*[!0-9]*) echo "usage: fuzz/run.sh <seconds per target>" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"

toolchain=()
if [ "${JITGATE_FUZZ_TOOLCHAIN:-}" = nightly ]; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^jitgate-fuzz$')
triple=$(rustc -vV | sed -n 's/^host: //p')

if cargo fuzz --version >/dev/null 2>&1; then
    run_target() {
        cargo "${toolchain[@]}" fuzz run "$1" "corpus/$1" "seeds/$1" -- \
            -max_total_time="$seconds" -print_final_stats=1
    }
else
    echo "==> cargo-fuzz not installed: building the targets with cargo and the same flags"
    # --target keeps the flags off build scripts and proc macros (which must run on the host).
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Zsanitizer=address -Cdebug-assertions" \
        cargo "${toolchain[@]}" build --release --locked --target "$triple" --bins
    run_target() {
        mkdir -p "artifacts/$1"
        "target/$triple/release/$1" "corpus/$1" "seeds/$1" \
            -artifact_prefix="artifacts/$1/" -max_total_time="$seconds" -print_final_stats=1
    }
fi

status=0
for target in $targets; do
    echo "==> fuzzing $target for ${seconds}s"
    # New inputs go to corpus/<target> (not committed); seeds/<target> is read only.
    mkdir -p "corpus/$target" "seeds/$target"
    if ! run_target "$target"; then
        echo "!!! $target crashed; reproduce with:" >&2
        echo "    RUSTC_BOOTSTRAP=1 cargo fuzz run $target fuzz/artifacts/$target/<crash file>" >&2
        status=1
    fi
done
exit "$status"
