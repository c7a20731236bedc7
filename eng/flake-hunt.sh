#!/usr/bin/env bash
# Hunts flaky tests: runs the README's test command RUNS times in a row while busy processes compete for every
# core, then names every test that failed or hung, with its message.
#
#   eng/flake-hunt.sh [RUNS] [--repeat N] [--filter EXPR] [--load N] [--no-build]
#
#   RUNS           how many times to run the tests (default 20)
#   --repeat N     run each test N times in one process in every run (MQ_TEST_REPEAT; default 1). A race that
#                  shows once in a hundred suite runs shows in seconds when one test's steps run a few thousand
#                  times: `eng/flake-hunt.sh 1 --repeat 3000 --filter "FullyQualifiedName~IsolationTests"`
#   --filter EXPR  a `dotnet test --filter` expression, to hunt in part of the suite
#   --load N       how many busy processes to run beside the tests (default: one per core)
#   --no-build     use the Release build already there (.ci/run has just built it with its test run)
#
# The solution is built once, before the load starts; each run is then `dotnet test MessageQueue.sln -c Release
# --no-build`, so every run tests the same build. The RabbitMQ tests need a server (eng/rabbitmq.sh start);
# without one they are skipped, as they are for `dotnet test` outside CI. Each run's TRX files and console log are
# kept in artifacts/flake-hunt/run-N. The last line is the summary: "N loaded runs: N failed, N hung". The script
# exits non-zero when any test failed or hung. Busy processes are stopped by their PIDs when it ends.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

runs=20 repeat=1 filter="" build=1 load="$(nproc 2>/dev/null || echo 2)"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) [ $# -ge 2 ] || usage; repeat="$2"; shift 2 ;;
    --filter) [ $# -ge 2 ] || usage; filter="$2"; shift 2 ;;
    --load) [ $# -ge 2 ] || usage; load="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    [0-9]*) runs="$1"; shift ;;
    *) echo "flake-hunt: unknown argument '$1'" >&2; usage ;;
  esac
done
for number in "$runs" "$repeat" "$load"; do
  case "$number" in ''|*[!0-9]*) echo "flake-hunt: '$number' is not a whole number" >&2; usage ;; esac
done
[ "$runs" -ge 1 ] && [ "$repeat" -ge 1 ] || { echo "flake-hunt: RUNS and --repeat must be 1 or more" >&2; exit 2; }

out="$repo/artifacts/flake-hunt"
rm -rf "$out"
mkdir -p "$out"

if [ "$build" -eq 1 ]; then
  echo "flake-hunt: building once (log in $out/build.log)"
  if ! dotnet build MessageQueue.sln -c Release -nologo > "$out/build.log" 2>&1; then
    tail -n 30 "$out/build.log" >&2
    echo "flake-hunt: the build failed" >&2
    exit 1
  fi
fi
# The report reader is a C# file: build it before the load, so that its first run does not count against a run.
dotnet build eng/test-report.cs -nologo > "$out/report-build.log" 2>&1 || { cat "$out/report-build.log" >&2; exit 1; }

load_pids=()
stop_load() {
  for pid in "${load_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${load_pids[@]}"; do wait "$pid" 2>/dev/null; done
  load_pids=()
}
trap stop_load EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 "$load"); do
  ( while :; do :; done ) &
  load_pids+=("$!")
done
echo "flake-hunt: $runs runs, each test run $repeat time(s) per run, beside $load busy process(es) (PIDs ${load_pids[*]})${filter:+, filter: $filter}"

# A repeated test runs longer than one run: widen blame's backstop and the session timeout by the repeat count.
hang_backstop=$((360 * repeat))
session_ms=$((1200000 * repeat))
filter_args=()
[ -n "$filter" ] && filter_args=(--filter "$filter")

total_failed=0 total_hung=0
for run in $(seq 1 "$runs"); do
  dir="$out/run-$run"
  mkdir -p "$dir"
  started=$(date +%s)
  MQ_TEST_REPEAT="$repeat" dotnet test MessageQueue.sln -c Release --no-build "${filter_args[@]}" \
    --results-directory "$dir" --blame-hang-timeout "${hang_backstop}s" --blame-hang-dump-type none \
    -- RunConfiguration.TestSessionTimeout="$session_ms" > "$dir/console.log" 2>&1
  report="$(dotnet run --no-build eng/test-report.cs -- "$dir" "$dir/console.log" 2>&1)"
  summary="$(printf '%s\n' "$report" | tail -n 1)"
  passed=$(printf '%s' "$summary" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
  failed=$(printf '%s' "$summary" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
  hung=$(printf '%s' "$summary" | sed -n 's/.*hung=\([0-9]*\).*/\1/p')
  if [ -z "$passed" ] || [ -z "$failed" ] || [ -z "$hung" ]; then
    printf '%s\n' "$report" >&2
    echo "flake-hunt: could not read the results of run $run" >&2
    exit 1
  fi
  if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$hung" -eq 0 ]; then
    tail -n 20 "$dir/console.log" >&2
    echo "flake-hunt: run $run ran no test (see $dir/console.log)" >&2
    exit 1
  fi
  total_failed=$((total_failed + failed))
  total_hung=$((total_hung + hung))
  echo "run $run/$runs: $passed passed, $failed failed, $hung hung ($(( $(date +%s) - started )) s)"
  printf '%s\n' "$report" | sed '$d'
done

stop_load
noun=runs; [ "$runs" -eq 1 ] && noun=run
echo "$runs loaded $noun: $total_failed failed, $total_hung hung"
[ "$total_failed" -eq 0 ] && [ "$total_hung" -eq 0 ]
