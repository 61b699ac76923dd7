#!/usr/bin/env bash
# Rollout and PuppetDB benchmarks (run by `make bench`):
# 1. rollout overhead: 20 waves of 50 nodes with a trivial task (fixture::echo) against the
#    emulator binary, pause 0: the median gap between a wave's last node line and the next
#    wave's header (that wave submitted and its job read), and kick's added time (wall time
#    minus the time its waves' nodes were running) as a share of the rollout's wall time.
#    Targets: gap < 50 ms, added time < 2 %. Run twice: the trivial task (fixture::echo),
#    whose waves last a few tens of ms, and fixture::sleep of KICK_BENCH_TASK_SECS (2) s.
# 2. PQL resolution of 10,000 nodes from the real PuppetDB (tests/scripts/puppetdb-up.sh;
#    needs the loopback puppetserver's CA): kick's client (examples/pql.rs, the code behind
#    `--query`) versus curl fetching the same answer; wall time (hyperfine) and peak RSS.
#    Targets: within 1.5x curl, RSS < 64 MiB. The 10,000 nodes are stored through PuppetDB's
#    command API (fact kick_bench=pql10k) once and kept in the suite's PuppetDB for the next runs.
# KICK_BENCH_ONLY=rollout|pql runs one of them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
only=${KICK_BENCH_ONLY:-all}
waves=${KICK_BENCH_WAVES:-20}
per_wave=${KICK_BENCH_PER_WAVE:-50}
pql_nodes=${KICK_BENCH_PQL_NODES:-10000}
work=$(mktemp -d)
emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

cargo build --release -q -p kick -p orchestrator-emulator --bin kick --bin orchestrator-emulator
cargo build --release -q -p orchestrator-client --example pql
kick=$target/release/kick
emu=$target/release/orchestrator-emulator

if [ "$only" = all ] || [ "$only" = rollout ]; then
  total=$((waves * per_wave))
  printf 'kick-bench-token\n' > "$work/tokens"
  printf 'kick-bench-token' > "$work/token"
  chmod 600 "$work/tokens" "$work/token"
  { echo "nodes:"; for i in $(seq 1 "$total"); do printf '  - certname: w%05d\n' "$i"; done; } > "$work/inventory.yaml"
  seq 1 "$total" | awk '{printf "w%05d\n", $1}' > "$work/nodes.txt"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$emu" --plain --listen "127.0.0.1:$port" --tokens-file "$work/tokens" --inventory "$work/inventory.yaml" \
    --modulepath "$root/crates/kick/tests/fixtures/modules" --state-dir "$work/emu-state" --concurrency 250 \
    > "$work/emu.log" 2>&1 &
  emu_pid=$!
  for _ in $(seq 1 100); do
    curl -sf -H 'X-Authentication: kick-bench-token' "http://127.0.0.1:$port/orchestrator/v1" > /dev/null 2>&1 && break
    sleep 0.1
  done
  # Each line of kick's JSONL output stamped on arrival (monotonic clock).
  for secs in 0 ${KICK_BENCH_TASK_SECS:-2}; do
  python3 - "$kick" "$port" "$work" "$per_wave" "$secs" <<'PY'
import json, subprocess, sys, time, statistics
kick, port, work, per_wave, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
task = ["fixture::echo", "message=hi"] if secs == "0" else ["fixture::sleep", "seconds=" + secs]
argv = [kick, "task", "run", *task, "--nodes", "@" + work + "/nodes.txt",
        "--batch", per_wave, "--format", "jsonl", "--service-url", "http://127.0.0.1:" + port,
        "--token-file", work + "/token"]
env = {"HOME": work, "XDG_STATE_HOME": work + "/state", "PATH": "/usr/bin:/bin"}
t0 = time.monotonic()
p = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
lines = [(time.monotonic(), json.loads(l)) for l in p.stdout]
code = p.wait()
wall = time.monotonic() - t0
if code != 0:
    sys.exit(f"kick exited {code}")
waves = [t for t, l in lines if l["type"] == "wave"]
last_node = {}
for t, l in lines:
    if l["type"] == "node":
        last_node[l["wave"]] = t
ends = [last_node[w] for w in sorted(last_node)]
gaps = [waves[i + 1] - ends[i] for i in range(len(waves) - 1)]
running = sum(ends[i] - waves[i] for i in range(len(waves)))
added = wall - running
print(f"rollout ({task[0]} {task[1]}): {len(waves)} waves of {per_wave} nodes, wall {wall:.2f} s; "
      f"wave-to-wave gap median {statistics.median(gaps) * 1000:.1f} ms "
      f"(min {min(gaps) * 1000:.1f}, max {max(gaps) * 1000:.1f}); "
      f"kick's added time {added:.2f} s = {100 * added / wall:.1f} % of the wall time")
PY
  done
  kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; emu_pid=
fi

if [ "$only" = all ] || [ "$only" = pql ]; then
  out=$(PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb} tests/scripts/puppetdb-up.sh)
  url=$(echo "$out" | sed -n 's/^KICK_TEST_PUPPETDB_URL=//p')
  pql='inventory[certname] { facts.kick_bench = "pql10k" }'
  count() { curl -s -G "$url/pdb/query/v4" --data-urlencode "query=$pql" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
  have=$(count)
  if [ "$have" -lt "$pql_nodes" ]; then
    echo "[bench] storing $pql_nodes nodes in PuppetDB (replace facts commands)"
    python3 - "$url" "$pql_nodes" <<'PY'
import http.client, json, sys, urllib.parse, datetime
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection(url.hostname, url.port)
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
for i in range(n):
    name = f"bench-{i:05d}.example"
    body = json.dumps({"certname": name, "environment": "production", "producer_timestamp": now,
                       "producer": "kick-bench", "values": {"kick_bench": "pql10k", "os": {"family": "Debian"}}})
    q = urllib.parse.urlencode({"command": "replace_facts", "version": 5, "certname": name})
    c.request("POST", "/pdb/cmd/v1?" + q, body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status >= 300:
        sys.exit(f"PuppetDB refused {name}: {r.status}")
PY
    for _ in $(seq 1 600); do [ "$(count)" -ge "$pql_nodes" ] && break; sleep 1; done
  fi
  echo "[bench] PuppetDB answers $(count) nodes for: $pql"
  body=$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$pql")
  pqlbin=$target/release/examples/pql
  hyperfine -N --warmup 2 --runs 15 --export-json "$work/pql.json" \
    -n curl "curl -s -o /dev/null -X POST -H Content-Type:application/json --data-raw '$body' $url/pdb/query/v4" \
    -n kick "$pqlbin $url '$pql'" >&2
  python3 - "$work/pql.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c, k = r["curl"]["median"], r["kick"]["median"]
print(f"pql: 10,000 nodes: kick {k * 1000:.0f} ms, curl {c * 1000:.0f} ms (median), ratio {k / c:.2f}")
PY
  rss=$(/usr/bin/time -f %M "$pqlbin" "$url" "$pql" 2>&1 >/dev/null | tail -n1)
  echo "pql: kick's peak RSS $((rss / 1024)) MiB ($rss KiB)"
fi
