#!/bin/sh
# kick benchmarks (run by `make bench`):
# 1. completion latency: a job whose nodes run 2 s; kick's wall time minus
#    2 s (median) versus poll-baseline (bench/poll_baseline.rs), which waits
#    like the Ruby orchestrator client and Bolt: GET the job at once, then
#    every second. Target < 150 ms, >= 5x better.
# 2. scale: collecting and summarising a finished 10,000-node job with 20 KiB
#    of output per node (`kick job watch ID --format json`), wall time and
#    peak RSS, versus curl downloading the same pages. Targets: within 1.5x
#    curl's time, peak RSS < 64 MiB.
# Both run against the emulator binary on loopback, with the fixture tasks of
# crates/kick/tests/fixtures/modules.
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
runs=${KICK_BENCH_RUNS:-7}
nodes=${KICK_BENCH_NODES:-10000}
kib=${KICK_BENCH_KIB:-20}
only=${KICK_BENCH_ONLY:-all}   # all, latency or scale

cargo build --release -q -p kick -p orchestrator-emulator --bin kick --bin orchestrator-emulator
cargo build --release -q -p kick --example poll-baseline
kick=$target/release/kick
poller=$target/release/examples/poll-baseline
emu=$target/release/orchestrator-emulator
work=$(mktemp -d)
emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

printf 'kick-bench-token\n' > "$work/tokens"
printf 'kick-bench-token' > "$work/token"
chmod 600 "$work/tokens" "$work/token"
{
  echo "nodes:"
  for n in lat1 lat2 lat3; do echo "  - certname: $n"; done
  i=0
  while [ "$i" -lt "$nodes" ]; do printf '  - certname: node%05d\n' "$i"; i=$((i + 1)); done
} > "$work/inventory.yaml"
i=0
while [ "$i" -lt "$nodes" ]; do printf 'node%05d\n' "$i"; i=$((i + 1)); done > "$work/scale.txt"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
"$emu" --plain --listen "127.0.0.1:$port" --tokens-file "$work/tokens" --inventory "$work/inventory.yaml" \
  --modulepath "$root/crates/kick/tests/fixtures/modules" --state-dir "$work/state" --concurrency 250 \
  > "$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
  curl -sf -H 'X-Authentication: kick-bench-token' "$url/orchestrator/v1" > /dev/null 2>&1 && break
  sleep 0.1
done
conn="--service-url $url --token-file $work/token"

if [ "$only" != scale ]; then
# Run times on the poller's 1 s grid (2 s, its best case: it looks again just
# after the end) and half a period off it (2.5 s, its average case).
for secs in 2 2.5; do
  echo "== completion latency: 3 nodes running $secs s, $runs runs each"
  hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/latency.json" \
    "$kick task run fixture::sleep seconds=$secs --nodes lat1,lat2,lat3 -q $conn" \
    "$poller $url $work/token '{\"task\":\"fixture::sleep\",\"params\":{\"seconds\":$secs},\"scope\":{\"nodes\":[\"lat1\",\"lat2\",\"lat3\"]},\"environment\":\"production\"}'" \
    > /dev/null
  kick_ms=$(jq ".results[0].median * 1000 - $secs * 1000 | round" "$work/latency.json")
  base_ms=$(jq ".results[1].median * 1000 - $secs * 1000 | round" "$work/latency.json")
  echo "kick: ${kick_ms} ms after the $secs s of work (median); 1 s poller: ${base_ms} ms; $(echo "$base_ms $kick_ms" | awk '{printf "%.1fx", $1 / ($2 > 0 ? $2 : 1)}') better"
done
fi
[ "$only" = latency ] && exit 0

echo "== scale: $nodes nodes x $kib KiB of output"
start=$(date +%s)
job=$("$kick" task run fixture::big kib="$kib" --nodes "@$work/scale.txt" --no-wait -q $conn)
"$kick" job watch "$job" -q --show-output none $conn > /dev/null || true
echo "job $job ran in $(( $(date +%s) - start )) s (emulator dispatch, not measured)"
pages=$(( (nodes + 199) / 200 - 1 ))
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/scale.json" \
  "$kick job watch $job --format json $conn" \
  "$kick job watch $job $conn" \
  "curl -s -H X-Authentication:kick-bench-token $url/orchestrator/v1/jobs/$job/nodes?limit=200&order_by=name&order=asc&offset=[0-$((pages * 200)):200]" \
  > /dev/null
k_json=$(jq '.results[0].median' "$work/scale.json")
k_human=$(jq '.results[1].median' "$work/scale.json")
c=$(jq '.results[2].median' "$work/scale.json")
bytes=$(curl -s -H X-Authentication:kick-bench-token "$url/orchestrator/v1/jobs/$job/nodes?limit=200&order_by=name&order=asc&offset=[0-$((pages * 200)):200]" | wc -c)
rss_json=$( { /usr/bin/time -f '%M' "$kick" job watch "$job" --format json $conn > /dev/null; } 2>&1 | tail -1)
rss_human=$( { /usr/bin/time -f '%M' "$kick" job watch "$job" $conn > /dev/null; } 2>&1 | tail -1)
awk -v kj="$k_json" -v kh="$k_human" -v c="$c" -v b="$bytes" -v rj="$rss_json" -v rh="$rss_human" 'BEGIN {
  printf "pages downloaded: %.1f MiB\n", b / 1048576
  printf "curl (same pages):           %6.3f s\n", c
  printf "kick --format json:          %6.3f s (%.2fx curl), peak RSS %.1f MiB\n", kj, kj / c, rj / 1024
  printf "kick (human summary):        %6.3f s (%.2fx curl), peak RSS %.1f MiB\n", kh, kh / c, rh / 1024
}'
