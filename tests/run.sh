#!/usr/bin/env bash
# tests/run.sh BUILD_DIR - runs every test and prints one summary line last.
#
# Runs, in order: each C test binary BUILD_DIR/tests/test_* (each prints
# "# name: N passed, N failed[, N skipped]"), then each shell test tests/*/test_*.sh (one
# case per script: exit 0 = pass, 77 = skipped, else fail). Output of each
# suite goes to BUILD_DIR/test-logs/; failures are replayed in full.
# The last line is "N passed, N failed[, N skipped]" and the exit status is
# non-zero when anything failed, so CI cannot mistake a failure for success.
set -u
build=${1:-build}
# Tests that run make themselves must not inherit the outer make's flags
# (-s would hide recipe lines they check; the jobserver fds are not theirs).
unset MAKEFLAGS MFLAGS MAKELEVEL
cd "$(dirname "$0")/.."
logs="$build/test-logs"
mkdir -p "$logs"
passed=0; failed=0; skipped=0; failed_suites=()

run_c_suite() {
    local bin=$1 name log
    name=$(basename "$bin")
    log="$logs/$name.log"
    local t0=$SECONDS
    "$bin" >"$log" 2>&1
    local rc=$?
    local line p=0 f=0 k=0
    line=$(grep -E '^# .*: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
    if [[ -n $line ]]; then
        p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
        f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
        [[ $line == *skipped ]] && k=$(sed -E 's/.*, ([0-9]+) skipped$/\1/' <<<"$line")
    fi
    if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; echo "CRASH $name (exit $rc)" >>"$log"; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
    if [[ $k -gt 0 ]]; then
        printf '%-34s %4d passed %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$k" $((SECONDS - t0))
    else
        printf '%-34s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
    fi
    if [[ $f -ne 0 ]]; then failed_suites+=("$log"); fi
}

run_sh_test() {
    local script=$1 name log rc
    name=${script#tests/}
    log="$logs/$(tr '/' '_' <<<"$name").log"
    local t0=$SECONDS
    DS4_BUILD="$build" bash "$script" >"$log" 2>&1
    rc=$?
    if [[ $rc -eq 0 ]]; then passed=$((passed + 1)); printf '%-34s ok  (%ds)\n' "$name" $((SECONDS - t0))
    elif [[ $rc -eq 77 ]]; then skipped=$((skipped + 1)); printf '%-34s skipped: %s\n' "$name" "$(tail -n 1 "$log")"
    else failed=$((failed + 1)); failed_suites+=("$log"); printf '%-34s FAILED (exit %d)\n' "$name" "$rc"; fi
}

for bin in "$build"/tests/test_*; do
    [[ -x $bin ]] && run_c_suite "$bin"
done
for script in tests/*/test_*.sh; do
    [[ -f $script ]] && run_sh_test "$script"
done

for log in "${failed_suites[@]+"${failed_suites[@]}"}"; do
    echo "---- $log"
    grep -E '^(FAIL|CRASH)' "$log" || tail -n 40 "$log"
done
if [[ $skipped -gt 0 ]]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[[ $failed -eq 0 && $((passed + skipped)) -gt 0 ]]
