#!/usr/bin/env bash
# Runs every test project: once with the default SIMD paths, then with AVX-512 off (256-bit paths)
# and with AVX-512 and AVX2 off (scalar paths). On .NET 10 DOTNET_EnableAVX512=0 is what turns
# Vector512 off (DOTNET_EnableAVX512F=0 alone no longer does), so both names are set.
# Then the core suite (tests/Runtime.Tests) once more on each GPU device this machine has
# (RUNTIME_DEVICE=opencl:0, RUNTIME_DEVICE=cuda:0; PoCL provides an OpenCL device on the CPU); a
# missing device skips its run. tests/Runtime.Gpu.Tests finds its device itself and skips without one.
#
# Every run must leave one .trx result per project it covers: each project under tests/*/ for the
# three CPU runs, tests/Runtime.Tests for a device run. A missing result (a project left out of
# Runtime.sln, a test host that died before writing) counts as one failure and is named.
# Ends with the wall time and then the line "N passed, N failed".
#
# Sourcing this file (instead of running it) only defines the functions; scripts/test-tally-check.sh
# uses that to check the counting on made-up results.
set -uo pipefail

# The test projects' names (their assembly names), one a line.
test_projects() {
  local p
  for p in tests/*/*.csproj; do [ -f "$p" ] && basename "$p" .csproj; done
}

# The test assembly a .trx file holds results of, from its test methods' codeBase (empty if it ran none).
trx_project() {
  grep -o -m 1 'codeBase="[^"]*"' "$1" | sed -E 's/^codeBase="(.*)"$/\1/; s#.*/##; s/\.dll$//'
}

# tally RESULTS_DIR EXPECTED...: adds the counters of every RESULTS_DIR/RUN_*.trx to $passed and
# $failed, where an EXPECTED entry "RUN:PROJECT" says that run must hold a result of that project;
# each one that does not counts as one failure.
tally() {
  local dir=$1 f run project counters p fl er to ab e
  shift
  local -A found=()
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  for f in "$dir"/*.trx; do
    [ -f "$f" ] || continue
    run=$(basename "$f"); run=${run%%_*}
    project=$(trx_project "$f")
    [ -n "$project" ] && found["$run:${project,,}"]=1
    counters=$(grep -o '<Counters [^>]*>' "$f" | head -n 1)
    p=$(get passed); fl=$(get failed); er=$(get error); to=$(get timeout); ab=$(get aborted)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${fl:-0} + ${er:-0} + ${to:-0} + ${ab:-0}))
  done
  for e in "$@"; do
    if [ -z "${found[${e,,}]:-}" ]; then
      echo "missing result: ${e#*:} in run ${e%%:*}"
      failed=$((failed + 1))
    fi
  done
}

# Wall time since $1 (a $SECONDS reading), as "took M min S s".
took() { local t=$((SECONDS - $1)); echo "took $((t / 60)) min $((t % 60)) s"; }

main() {
  local start=$SECONDS
  cd "$(dirname "$0")/.."
  local results projects
  results=$(mktemp -d)
  mapfile -t projects < <(test_projects)
  expected=()
  passed=0; failed=0

  dotnet build Runtime.sln -c Release -warnaserror 2>&1 | tail -n 3
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "build failed"
    took "$start"
    echo "0 passed, 1 failed"
    exit 1
  fi

  run() { # name, env...
    local name=$1 p; shift
    echo "== tests: $name"
    env "$@" dotnet test Runtime.sln -c Release --no-build --logger "trx;LogFilePrefix=$name" \
      --results-directory "$results" 2>&1 | grep -E "Passed!|Failed!|Failed |error" | head -n 50
    for p in "${projects[@]}"; do expected+=("$name:$p"); done
  }
  run simd
  # The vision-operator suites run their GPU-device cases in the first run only (RUNTIME_TEST_CPU_ONLY).
  run avx2 DOTNET_EnableAVX512F=0 DOTNET_EnableAVX512=0 RUNTIME_TEST_CPU_ONLY=1
  run scalar DOTNET_EnableAVX512F=0 DOTNET_EnableAVX512=0 DOTNET_EnableAVX2=0 RUNTIME_TEST_CPU_ONLY=1

  local devices
  devices=$(dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll devices 2>&1)
  run_on_device() { # device
    local dev=$1 name=${1/:/}
    if ! grep -qE "^$dev +available" <<<"$devices"; then
      echo "== tests: core suite on $dev skipped ($(grep -E "^${dev%%:*}" <<<"$devices" | head -n 1 | sed -E 's/ +/ /g'))"
      return
    fi
    echo "== tests: core suite on $dev"
    RUNTIME_DEVICE=$dev dotnet test tests/Runtime.Tests/Runtime.Tests.csproj -c Release --no-build --logger "trx;LogFilePrefix=$name" \
      --results-directory "$results" 2>&1 | grep -E "Passed!|Failed!|Failed |error" | head -n 50
    expected+=("$name:Runtime.Tests")
  }
  run_on_device opencl:0
  run_on_device cuda:0

  tally "$results" "${expected[@]}"
  rm -rf "$results"
  took "$start"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
