#!/usr/bin/env bash
# fuzz/run-all.sh SECONDS [TARGET...]
#
# Runs every libFuzzer target (or the named ones) for SECONDS each, one after the other,
# from a copy of its seed corpus in a temp dir (fuzz/corpus is never written). Builds
# nothing: run `cmake --preset fuzz && cmake --build build-fuzz -j2` first.
# Prints each target's executions and coverage; exits 1 if any target crashed, hit a
# sanitizer report, a timeout, a leak or an out-of-memory, or did not run (crash inputs are
# kept in build-fuzz/fuzz-artifacts/<target>/ to replay: ./build-fuzz/<target> <file>).
# ZAPD_FUZZ_BUILD overrides the build dir.
set -uo pipefail

secs=${1:?usage: fuzz/run-all.sh SECONDS [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
build=${ZAPD_FUZZ_BUILD:-$here/../build-fuzz}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run-all: no build dir $build (cmake --preset fuzz && cmake --build build-fuzz)" >&2; exit 2; }

# target -> extra flags (corpus dir is fuzz/corpus/<name without _fuzz>).
declare -A flags=(
  [templates_fuzz]="-max_len=16384 -dict=$here/templates.dict"
  [json_fuzz]="-max_len=8192 -dict=$here/json.dict"
  [payload_fuzz]="-max_len=8192 -dict=$here/json.dict"
  [signature_fuzz]="-max_len=4096"
  [router_fuzz]="-max_len=20000 -dict=$here/http.dict"
  [zap_validate_fuzz]="-max_len=16384 -dict=$here/zaps.dict"
  [zap_import_fuzz]="-max_len=16384 -dict=$here/zaps.dict"
  [config_fuzz]="-max_len=16384 -dict=$here/config.dict"
)
all=(templates_fuzz json_fuzz payload_fuzz signature_fuzz router_fuzz zap_validate_fuzz zap_import_fuzz config_fuzz)
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")

work=$(mktemp -d "${TMPDIR:-/tmp}/zapd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
printf '%-18s %8s %12s %8s %s\n' target seconds executions cov result
for t in "${targets[@]}"; do
  if [[ -z ${flags[$t]+x} ]]; then echo "run-all: unknown target $t" >&2; failed+=("$t"); continue; fi
  bin=$build/$t
  seeds=$here/corpus/${t%_fuzz}
  if [[ ! -x $bin ]]; then echo "run-all: $bin is not built" >&2; failed+=("$t"); continue; fi
  mkdir -p "$work/$t/corpus" "$work/$t/art"
  cp -r "$seeds"/. "$work/$t/corpus/"
  log=$work/$t/log
  start=$SECONDS
  # shellcheck disable=SC2086  # flags are words
  "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 ${flags[$t]} \
      -artifact_prefix="$work/$t/art/" "$work/$t/corpus" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  result=ok
  if [[ $rc -ne 0 ]] || ! grep -q '^Done [0-9]* runs' "$log"; then
    result="FAILED (exit $rc)"
    failed+=("$t")
    keep=$build/fuzz-artifacts/$t
    mkdir -p "$keep" && cp -r "$work/$t/art"/. "$keep/" 2>/dev/null
    echo "---- $t: last lines of its log (artifacts in $keep) ----"
    tail -n 60 "$log"
    echo "----"
  fi
  printf '%-18s %8s %12s %8s %s\n' "$t" "$took" "${execs:-?}" "${cov:-?}" "$result"
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run-all: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run-all: all ${#targets[@]} targets ran ${secs}s each without a finding"
