#!/usr/bin/env bash
# Runs the benchmarks under bench/ one after the other and ends with a summary of each script's
# ratio and PASS/FAIL lines. They print numbers; they are not tests (see bench/README.md).
#
#   bash scripts/bench.sh                 # quick sizes: every script, a few minutes in all
#   bash scripts/bench.sh --full          # each script's own defaults: the sizes docs/benchmarks.md reports
#   bash scripts/bench.sh evaluation_math save_latency   # only these (names of bench/*.py, quick or --full)
#
# Quick sizes only show that each benchmark runs and roughly where it stands; figures worth recording
# come from --full (or the single commands in bench/README.md) on a quiet machine.
#
# Environment: BENCH_DATABASE_URL — a PostgreSQL database save_latency.py may drop and re-create
# (default: its own mi_bench on postgres://postgres@127.0.0.1:5432); generation_overhead.py and
# evaluation_scale.py and results_scale.py use SQLite in a temporary folder (DATABASE_URL is not passed on
# to them; run them by hand with DATABASE_URL for PostgreSQL figures).
# MI_SHARED_DATA — the shared data folder (CPsyCounD for import_cpsycound.py and evaluation_math.py).
#
# Exit status: 0 when every script ran and exited 0 (PASS); 1 when any exited otherwise (a FAIL
# against its target or an error: the summary shows which).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

full=0
selected=()
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) selected+=("${arg%.py}") ;;
  esac
done

ALL=(import_cpsycound evaluation_math evaluation_scale results_scale generation_overhead save_latency machine_coder)
if [ ${#selected[@]} -eq 0 ]; then
  selected=("${ALL[@]}")
fi

# Arguments per script: quick sizes by default, the script's own defaults with --full.
args_for() {
  local name=$1
  local db=()
  if [ "$name" = save_latency ] && [ -n "${BENCH_DATABASE_URL:-}" ]; then
    db=(--database-url "$BENCH_DATABASE_URL")
  fi
  if [ $full -eq 1 ]; then
    echo "${db[@]}"
    return
  fi
  case "$name" in
    import_cpsycound) echo "--repeat 1" ;;
    evaluation_math) echo "" ;;  # fixed, already small sizes (seconds)
    evaluation_scale) echo "--transcripts 200" ;;
    results_scale) echo "--transcripts 400 --submits 5" ;;
    generation_overhead) echo "--repeat 2 --passes 1 --steps 60" ;;
    save_latency) echo "--seconds 5 --warmup 1 ${db[*]}" ;;
    machine_coder) echo "--utterances 2000" ;;
  esac
}

summary=()
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
for name in "${selected[@]}"; do
  script="bench/$name.py"
  if [ ! -f "$script" ]; then
    echo "no such benchmark: $script (have: ${ALL[*]})" >&2
    summary+=("$name: no such script")
    failed=1
    continue
  fi
  # shellcheck disable=SC2046 # word splitting of the argument list is intended
  set -- $(args_for "$name")
  echo "== $name: $PY $script $*   (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  start=$(date +%s)
  env -u DATABASE_URL "$PY" "$script" "$@" 2>&1 | tee "$log/$name.out"
  status=${PIPESTATUS[0]}
  seconds=$(( $(date +%s) - start ))
  echo
  # The lines that carry a verdict or a ratio, for the summary.
  lines=$(grep -E 'PASS|FAIL|SLOW|\bOK\b|\bratio|^overhead |best / budget' "$log/$name.out" | sed 's/^/    /')
  if [ "$name" = import_cpsycound ] && [ "$status" -eq 2 ] && grep -q "CPsyCounD not found" "$log/$name.out"; then
    summary+=("$name: skipped (no shared data; set MI_SHARED_DATA)")
    continue
  fi
  summary+=("$name: exit $status after ${seconds} s${lines:+$'\n'$lines}")
  [ "$status" -eq 0 ] || failed=1
done

echo "== summary ($([ $full -eq 1 ] && echo full || echo quick) sizes; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
for entry in "${summary[@]}"; do
  echo "$entry"
done
exit $failed
