#!/usr/bin/env bash
# Runs every test project: once with the default SIMD paths, then with AVX-512 off (256-bit paths)
# and with AVX-512 and AVX2 off (scalar paths). On .NET 10 DOTNET_EnableAVX512=0 is what turns
# Vector512 off (DOTNET_EnableAVX512F=0 alone no longer does), so both names are set.
# Then the core suite (tests/Runtime.Tests) once more on each GPU device this machine has
# (RUNTIME_DEVICE=opencl:0, RUNTIME_DEVICE=cuda:0; PoCL provides an OpenCL device on the CPU); a
# missing device skips its run. tests/Runtime.Gpu.Tests finds its device itself and skips without one.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp -d)
dotnet build Runtime.sln -c Release -warnaserror 2>&1 | tail -n 3
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

run() { # name, env...
  local name=$1; shift
  echo "== tests: $name"
  env "$@" dotnet test Runtime.sln -c Release --no-build --logger "trx;LogFilePrefix=$name" \
    --results-directory "$results" 2>&1 | grep -E "Passed!|Failed!|Failed |error" | head -n 50
}
run simd
# The vision-operator suites run their GPU-device cases in the first run only (RUNTIME_TEST_CPU_ONLY).
run avx2 DOTNET_EnableAVX512F=0 DOTNET_EnableAVX512=0 RUNTIME_TEST_CPU_ONLY=1
run scalar DOTNET_EnableAVX512F=0 DOTNET_EnableAVX512=0 DOTNET_EnableAVX2=0 RUNTIME_TEST_CPU_ONLY=1
expected=3

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
  expected=$((expected + 1))
}
run_on_device opencl:0
run_on_device cuda:0

passed=0; failed=0; files=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -n 1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  p=$(get passed); fl=$(get failed); er=$(get error); to=$(get timeout); ab=$(get aborted)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${fl:-0} + ${er:-0} + ${to:-0} + ${ab:-0}))
done
if [ "$files" -lt "$expected" ]; then failed=$((failed + expected - files)); fi
rm -rf "$results"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
