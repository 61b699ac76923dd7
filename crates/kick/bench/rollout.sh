#!/usr/bin/env bash
# Rollout and PuppetDB benchmarks (run by `make bench`):
# 1. rollout overhead: 20 waves of 50 nodes with a trivial task (fixture::echo) against the
#    orchestrator binary, pause 0: the median gap between a wave's last node line and the next
#    wave's header (that wave submitted and its job read), and kick's added time: its wall
#    time minus that of a minimal client running the same waves against the same orchestrator
#    (baseline.py below, without Python's start-up), medians of KICK_BENCH_ROUNDS (15)
#    alternating runs, as a share of kick's wall time. Targets: gap < 50 ms, added time < 2 %. Then once with
#    fixture::sleep of KICK_BENCH_TASK_SECS (2) s, for the gaps of longer waves.
# 2. PQL resolution of 10,000 nodes from the real PuppetDB (tests/scripts/puppetdb-up.sh;
#    needs the loopback puppetserver's CA): kick's client (examples/pql.rs, the code behind
#    `--query`) versus curl fetching the same answer; wall time (hyperfine) and peak RSS.
#    Targets: within 1.5x curl, RSS < 64 MiB. The 10,000 nodes are stored through PuppetDB's
#    command API (fact kick_bench=pql10k) once and kept in the suite's PuppetDB for the next runs.
#    A PuppetDB (and its PostgreSQL) this script started is stopped at the end by its recorded
#    PIDs (puppetdb-down.sh; the loaded nodes stay on disk); one already running is left alone.
# KICK_BENCH_ONLY=rollout|pql runs one of them. KICK_BENCH_SCRIPTS: where puppetdb-up.sh and
# puppetdb-down.sh are (default tests/scripts; the bench's own test puts stand-ins there).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
only=${KICK_BENCH_ONLY:-all}
waves=${KICK_BENCH_WAVES:-20}
per_wave=${KICK_BENCH_PER_WAVE:-50}
pql_nodes=${KICK_BENCH_PQL_NODES:-10000}
scripts=${KICK_BENCH_SCRIPTS:-$root/tests/scripts}
work=$(mktemp -d)
emu_pid= pdb_started=0
export PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb}
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  wait 2>/dev/null
  if [ "$pdb_started" = 1 ]; then "$scripts/puppetdb-down.sh" || true; pdb_started=0; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release -q -p kick -p kick-orchestrator --bin kick --bin kick-orchestrator
cargo build --release -q -p orchestrator-client --example pql
kick=$target/release/kick
emu=$target/release/kick-orchestrator

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
  # The baseline: the least a client can do for the same rollout, a loop over the same waves
  # that submits each (POST /command/task), polls GET /jobs/N every 20 ms (kick's shortest
  # interval) until it ends and reads its node results once (GET /jobs/N/nodes), on one
  # keep-alive connection. kick's added time is its wall time (process start to exit) minus
  # the baseline's, timed inside it from after Python's start-up and imports (which are not
  # the client's work) to its end, alternating, side by side in one run.
  cat > "$work/baseline.py" <<'PY'
import http.client, json, sys, time
t0 = time.monotonic()
port, nodes_file, per_wave = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
task, params = sys.argv[4], json.loads(sys.argv[5])
nodes = [l.strip() for l in open(nodes_file) if l.strip()]
head = {"X-Authentication": "kick-bench-token", "Content-Type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None):
    c.request(method, "/orchestrator/v1" + path, body, head)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data)
for w in range(0, len(nodes), per_wave):
    body = json.dumps({"task": task, "params": params, "scope": {"nodes": nodes[w:w + per_wave]}})
    job = call("POST", "/command/task", body)["job"]["name"]
    while call("GET", f"/jobs/{job}")["state"] not in ("finished", "failed", "stopped"):
        time.sleep(0.02)
    call("GET", f"/jobs/{job}/nodes?limit=1000")
print(time.monotonic() - t0)
PY
  # Each line of kick's JSONL output stamped on arrival (monotonic clock).
  for secs in 0 ${KICK_BENCH_TASK_SECS:-2}; do
  python3 - "$kick" "$port" "$work" "$per_wave" "$secs" "${KICK_BENCH_ROUNDS:-15}" <<'PY'
import json, subprocess, sys, time, statistics
kick, port, work, per_wave, secs, rounds = sys.argv[1:7]
rounds = int(rounds) if secs == "0" else 1
task = ["fixture::echo", "message=hi"] if secs == "0" else ["fixture::sleep", "seconds=" + secs]
params = {"message": "hi"} if secs == "0" else {"seconds": int(secs)}
argv = [kick, "task", "run", *task, "--nodes", "@" + work + "/nodes.txt",
        "--batch", per_wave, "--format", "jsonl", "--service-url", "http://127.0.0.1:" + port,
        "--token-file", work + "/token"]
env = {"HOME": work, "XDG_STATE_HOME": work + "/state", "PATH": "/usr/bin:/bin"}
base_argv = ["python3", work + "/baseline.py", port, work + "/nodes.txt", per_wave, task[0],
             json.dumps(params)]

def kick_run():
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
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
    return wall, gaps, wall - running, len(waves)

def base_run():
    out = subprocess.run(base_argv, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])

kick_walls, base_walls, gaps, outside = [], [], [], []
for _ in range(rounds):
    if secs == "0":
        base_walls.append(base_run())
    wall, g, added, n = kick_run()
    kick_walls.append(wall)
    gaps += g
    outside.append(added / wall)
kw = statistics.median(kick_walls)
print(f"rollout ({task[0]} {task[1]}): {n} waves of {per_wave} nodes, kick's wall time median {kw:.3f} s "
      f"({rounds} runs); wave-to-wave gap median {statistics.median(gaps) * 1000:.1f} ms "
      f"(min {min(gaps) * 1000:.1f}, max {max(gaps) * 1000:.1f}, {len(gaps)} gaps); "
      f"time outside the waves' node spans (start-up, gaps, end) {100 * statistics.median(outside):.1f} % of the wall time")
if base_walls:
    bw = statistics.median(base_walls)
    print(f"rollout ({task[0]} {task[1]}): minimal client (baseline.py) wall time median {bw:.3f} s; "
          f"kick's added time (difference of medians) {(kw - bw) * 1000:.0f} ms = "
          f"{100 * (kw - bw) / kw:.1f} % of kick's wall time (target < 2 %)")
PY
  done
  kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; emu_pid=
fi

if [ "$only" = all ] || [ "$only" = pql ]; then
  # Ownership as make-test.sh learns it: puppetdb-up.sh writes `started` only when it starts
  # PuppetDB, and it is read before the start ends, so an interrupted start is stopped too.
  mkdir -p "$PDB_STATE"; rm -f "$PDB_STATE/started"
  "$scripts/puppetdb-up.sh" > "$work/pdb-up.out" &
  up_pid=$!
  while kill -0 "$up_pid" 2>/dev/null && [ ! -e "$PDB_STATE/started" ]; do sleep 0.5; done
  [ -e "$PDB_STATE/started" ] && pdb_started=1
  wait "$up_pid"
  url=$(sed -n 's/^KICK_TEST_PUPPETDB_URL=//p' "$work/pdb-up.out")
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
