#!/usr/bin/env bash
# Checks scripts/test.sh's counting on made-up .trx files: counters add up across files, and each
# expected run:project without a result file counts as one named failure. Prints "ok" or what differed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/test.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

fake() { # file, assembly, passed, failed
  cat >"$dir/$1" <<XML
<TestRun><TestDefinitions><UnitTest storage="/x/$(tr A-Z a-z <<<"$2").dll"><TestMethod codeBase="/x/bin/$2.dll" name="T" /></UnitTest></TestDefinitions>
<ResultSummary outcome="Completed"><Counters total="9" executed="9" passed="$3" failed="$4" error="0" timeout="0" aborted="0" /></ResultSummary></TestRun>
XML
}
fake simd_net10.0_1.trx Runtime.Tests 10 0
fake simd_net10.0_2.trx Runtime.Vision.Tests 5 1
fake avx2_net10.0_1.trx Runtime.Tests 10 0
fake opencl0_net10.0_1.trx Runtime.Tests 7 0
echo '<TestRun><ResultSummary><Counters total="0" passed="0" failed="0" /></ResultSummary></TestRun>' >"$dir/avx2_net10.0_2.trx"

passed=0; failed=0
tally "$dir" simd:Runtime.Tests simd:Runtime.Vision.Tests avx2:Runtime.Tests avx2:Runtime.Vision.Tests \
  opencl0:Runtime.Tests cuda0:Runtime.Tests >"$dir/messages"
out=$(cat "$dir/messages")
want=$'missing result: Runtime.Vision.Tests in run avx2\nmissing result: Runtime.Tests in run cuda0'
bad=0
[ "$out" = "$want" ] || { echo "messages: got [$out], want [$want]"; bad=1; }
[ "$passed" -eq 32 ] || { echo "passed: got $passed, want 32"; bad=1; }
[ "$failed" -eq 3 ] || { echo "failed: got $failed, want 3 (1 test + 2 missing results)"; bad=1; }
# Every test project is listed, so a new one is expected in every run without editing test.sh.
listed=$(test_projects | tr '\n' ' ')
for p in tests/*/*.csproj; do
  grep -qw "$(basename "$p" .csproj)" <<<"$listed" || { echo "test_projects misses $p"; bad=1; }
done
[ "$bad" -eq 0 ] && echo ok
