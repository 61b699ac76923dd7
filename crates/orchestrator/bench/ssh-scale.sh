#!/usr/bin/env bash
# The 1,000-node SSH benchmark (issue 17, "Fleet scale, measured"), run by `make bench`: Kick's
# orchestrator, Ansible and the floor of one OpenSSH client per node, side by side in one run,
# against one fleet of SSH nodes on distinct loopback addresses (bench/ssh-fleet.sh).
#
#   kick     target/release/kick-orchestrator with the nodes as SSH connection entries (a Bolt
#            inventory file: user root, the fleet's key, host keys checked against the fleet's
#            known_hosts copied to <state-dir>/known_hosts, each node its own tmpdir), one job of
#            the trivial task fixture::trivial on all nodes over HTTP, --concurrency 250, polled
#            until it ends; then a second job on the same nodes, the task already cached on each.
#            Measured: wall time from submit to the job's end, the service's CPU (utime + stime
#            from /proc/<pid>/stat over the job), its peak RSS and open fds (sampled every 100 ms).
#   ansible  ansible-core from PyPI in a venv, `ansible all -m raw -a true -f 250 -o`,
#            ControlMaster off, host keys checked against the same known_hosts, same key; under
#            /usr/bin/time (its Python and every ssh it waited for).
#   xargs    `xargs -P 250 -n 1 sh -c 'ssh ... root@"$0" true'` over the addresses, under
#            /usr/bin/time.
#   xargs-c25519  the same floor with -o KexAlgorithms=curve25519-sha256: OpenSSH's client with
#            the key exchange Kick's russh negotiates with this sshd (OpenSSH 9.2 picks
#            sntrup761x25519-sha512 by default, whose key generation dominates the client's CPU).
#            Not a target; it shows how much of the floor is the key exchange.
#
# Each is run RUNS times, alternating (kick, ansible, xargs, xargs-c25519, kick, ...); medians are
# reported as a Markdown table with the targets met or missed. For every run the node side's CPU
# (the fleet's sshds and all they ran, from their children's times) and the CPU of everything else
# on the machine (the rest of /proc/stat's busy time) are reported too: on one machine the nodes
# share the CPUs with the tools.
#
# The machine must be quiet: the measured runs start only once the 1-minute load is under
# MAX_LOAD (waiting up to QUIET_WAIT seconds, else failing); before each run the CPUs must have
# been idle for 2 s (nothing else running; our own previous run keeps the load average up for a
# while, not the CPUs).
#
# Env: KICK_SSH_BENCH_NODES (1000), KICK_SSH_BENCH_RUNS (3), KICK_SSH_BENCH_CONCURRENCY (250),
# KICK_SSH_BENCH_TOOLS ("kick ansible xargs xargs-c25519"), KICK_SSH_BENCH_MAX_LOAD (1.0),
# KICK_SSH_BENCH_QUIET_WAIT (1800), KICK_SSH_BENCH_MAX_BUSY (0.15), KICK_SSH_BENCH_OUT (also write the results there),
# KICK_SSH_BENCH_VENV (/tmp/kick-bench-venv), KICK_SSH_BENCH_ANSIBLE (ansible-core==2.19.15),
# KICK_SSH_BENCH_PROFILE=1 (after the measured runs, one more Kick round under `perf record -a`:
# the machine's CPU by command, and the orchestrator's hottest symbols), CARGO_TARGET_DIR.
#
# The open-file limit is raised to the hard limit (250 sessions at once need ~1,000 descriptors in
# the tools and the sshds). Everything started is stopped by PID at the end, the fleet included.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
nodes=${KICK_SSH_BENCH_NODES:-1000}
runs=${KICK_SSH_BENCH_RUNS:-3}
conc=${KICK_SSH_BENCH_CONCURRENCY:-250}
tools=${KICK_SSH_BENCH_TOOLS:-kick ansible xargs xargs-c25519}
max_load=${KICK_SSH_BENCH_MAX_LOAD:-1.0}
quiet_wait=${KICK_SSH_BENCH_QUIET_WAIT:-1800}
max_busy=${KICK_SSH_BENCH_MAX_BUSY:-0.15}
out=${KICK_SSH_BENCH_OUT:-}
venv=${KICK_SSH_BENCH_VENV:-/tmp/kick-bench-venv}
ansible_spec=${KICK_SSH_BENCH_ANSIBLE:-ansible-core==2.19.15}
fleet_sh=$root/crates/orchestrator/bench/ssh-fleet.sh
export BENCH_FLEET_STATE=${BENCH_FLEET_STATE:-/tmp/kick-bench-fleet}
fleet=$BENCH_FLEET_STATE
orch=$target/release/kick-orchestrator
modulepath=$root/crates/orchestrator/tests/fixtures/modules
task=fixture::trivial
hz=$(getconf CLK_TCK)
ncpu=$(nproc)

log() { echo "[ssh-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the fleet's sshds, namespaces)"
ulimit -n "$(ulimit -Hn)"
log "open-file limit raised to $(ulimit -n)"

work=$(mktemp -d /tmp/kick-ssh-bench.XXXXXX)
orch_pid=
sampler_pid=
fleet_up=0
cleanup() {
  local rc=$?
  [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true
  [ -z "$orch_pid" ] || { kill "$orch_pid" 2>/dev/null || true; wait "$orch_pid" 2>/dev/null || true; }
  [ "$fleet_up" = 0 ] || "$fleet_sh" down || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tools -------------------------------------------------------------------------------
cargo build --release -q -p kick-orchestrator --bin kick-orchestrator
"$orch" --help | grep -q -- '--inventory-file' \
  || die "$orch has no --inventory-file (a Bolt inventory loaded at start): build a newer tree"
if ! "$venv/bin/python3" -c 'import ansible' 2>/dev/null \
    || [ "$("$venv/bin/python3" -c 'import ansible.release as r; print(r.__version__)')" != "${ansible_spec#*==}" ]; then
  log "installing $ansible_spec into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$ansible_spec"
fi
ansible_version=$("$venv/bin/python3" -c 'import ansible.release as r; print(r.__version__)')
python_version=$("$venv/bin/python3" -c 'import platform; print(platform.python_version())')
openssh_version=$(ssh -V 2>&1)
sshd_version=$(dpkg-query -W -f='${Version}' openssh-server 2>/dev/null || echo '?')

# --- the fleet -------------------------------------------------------------------------------
fleet_up=1
"$fleet_sh" up "$nodes" > /dev/null
key=$fleet/id_ed25519
kh=$fleet/known_hosts
mapfile -t addrs < "$fleet/addresses"
[ "${#addrs[@]}" = "$nodes" ] || die "the fleet has ${#addrs[@]} addresses, want $nodes"

# Kick: a Bolt inventory (certname n0001.bench at 127.0.3.1, ...), tokens, the job's body.
{
  echo "version: 2"
  echo "config:"
  echo "  transport: ssh"
  echo "  ssh:"
  echo "    user: root"
  echo "    port: 22"
  echo "    private-key: $key"
  echo "    host-key-check: true"
  echo "targets:"
  for i in "${!addrs[@]}"; do
    printf '  - name: n%04d.bench\n    uri: %s\n    config:\n      ssh:\n        tmpdir: %s\n' \
      $((i + 1)) "${addrs[$i]}" "$fleet/tmp/${addrs[$i]}"
  done
} > "$work/inventory.yaml"
for i in "${!addrs[@]}"; do printf 'n%04d.bench\n' $((i + 1)); done > "$work/certnames"
token=kick-ssh-bench-token
echo "$token" > "$work/tokens"
chmod 600 "$work/tokens"
jq -n --arg task "$task" --rawfile names "$work/certnames" \
  '{environment: "production", task: $task, params: {}, scope: {nodes: ($names | split("\n") | map(select(. != "")))}}' \
  > "$work/job.json"

# Ansible: an INI inventory of the addresses, its config in the work dir (nothing under ~).
{ echo "[bench]"; printf '%s\n' "${addrs[@]}"; echo "[bench:vars]"; echo "ansible_user=root"; } > "$work/ansible-inventory"
mkdir -p "$work/ansible-home" "$work/ansible-tmp"
cat > "$work/ansible.cfg" <<CFG
[defaults]
inventory = $work/ansible-inventory
host_key_checking = True
forks = $conc
private_key_file = $key
deprecation_warnings = False

[ssh_connection]
ssh_args = -o ControlMaster=no -o ControlPath=none -o UserKnownHostsFile=$kh -o BatchMode=yes
CFG
ansible_env=(env ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_HOME="$work/ansible-home"
  ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_HOST_KEY_CHECKING=True PYTHONWARNINGS=ignore)
printf '%s\n' "${addrs[@]}" > "$work/addresses"

# The sampler: peak open fds and peak VmRSS of a PID every 100 ms, until SIGTERM.
cat > "$work/sampler.py" <<'PY'
import os, signal, sys, time
pid, out = sys.argv[1], sys.argv[2]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
fds = rss = n = 0
while not stop:
    try:
        f = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/status") as s:
            r = next(int(l.split()[1]) for l in s if l.startswith("VmRSS:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        break
    fds, rss, n = max(fds, f), max(rss, r), n + 1
    time.sleep(0.1)
with open(out, "w") as o:
    o.write(f"{fds} {rss} {n}\n")
PY

# --- measuring -------------------------------------------------------------------------------
now() { date +%s.%N; }
# utime + stime (+ children's with $2 = all) of a PID, in ticks.
ticks() { awk -v all="${2:-}" '{ sub(/^.*\) /, ""); t = $12 + $13; if (all != "") t += $14 + $15; print t }' "/proc/$1/stat"; }
# Busy ticks of the whole machine (all CPUs): everything but idle and iowait.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU of the node side: the fleet's sshds with every session they reaped.
sshd_pids() { for f in "$fleet"/sshd/*/pid; do read -r p _ < "$f"; echo "$p"; done; }
node_ticks() { local t=0 p; for p in $(sshd_pids); do t=$((t + $(ticks "$p" all))); done; echo "$t"; }
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'; }

load1() { cut -d' ' -f1 /proc/loadavg; }
wait_load() {
  local t0=$SECONDS l
  while :; do
    l=$(load1)
    awk -v l="$l" -v m="$max_load" 'BEGIN { exit !(l < m) }' && { echo "$l"; return 0; }
    [ $((SECONDS - t0)) -lt "$quiet_wait" ] || die "the machine is not quiet: 1-minute load $l after ${quiet_wait}s (want < $max_load)"
    log "waiting for a quiet machine: 1-minute load $l (want < $max_load)"
    sleep 20
  done
}
# Before each run: the CPUs idle (under MAX_BUSY CPUs busy over 2 s), waiting up to QUIET_WAIT.
wait_idle() {
  local t0=$SECONDS b0 b1 used
  while :; do
    b0=$(busy); sleep 2; b1=$(busy)
    used=$(awk -v d=$((b1 - b0)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz / 2 }')
    awk -v u="$used" -v m="$max_busy" 'BEGIN { exit !(u < m) }' && return 0
    [ $((SECONDS - t0)) -lt "$quiet_wait" ] || die "the machine is not idle: $used CPUs busy"
    log "waiting for idle CPUs: $used busy"
    sleep 5
  done
}

# One row a run: tool run wall cpu_ticks rss_kib fds node_ticks other_ticks ok (kept beside
# KICK_SSH_BENCH_OUT as the runs go, so that nothing measured is lost).
results=${out:+${out%.md}.tsv}
results=${results:-$work/results.tsv}
: > "$results"
record() { printf '%s\n' "$*" | tr ' ' '\t' >> "$results"; }

api=
start_orchestrator() { # run
  local state=$work/kick-state-$1 port
  mkdir -p "$state"
  cp "$kh" "$state/known_hosts"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  api=http://127.0.0.1:$port/orchestrator/v1
  "$orch" --plain --listen "127.0.0.1:$port" --tokens-file "$work/tokens" \
    --inventory-file "$work/inventory.yaml" --modulepath "$modulepath" --state-dir "$state" \
    --concurrency "$conc" > "$work/orchestrator-$1.log" 2>&1 &
  orch_pid=$!
  for _ in $(seq 1 300); do
    curl -sf -H "X-Authentication: $token" "$api/" > /dev/null 2>&1 && return 0
    kill -0 "$orch_pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$work/orchestrator-$1.log" >&2
  die "kick-orchestrator did not start"
}
stop_orchestrator() {
  kill "$orch_pid" 2>/dev/null || true
  wait "$orch_pid" 2>/dev/null || true
  orch_pid=
}

# One job on every node: prints nothing, records a row.
kick_job() { # label run
  local label=$1 run=$2 t0 t1 c0 c1 n0 n1 b0 b1 id state body
  b0=$(busy); n0=$(node_ticks); c0=$(ticks "$orch_pid")
  python3 "$work/sampler.py" "$orch_pid" "$work/sample" &
  sampler_pid=$!
  t0=$(now)
  body=$(curl -sf -H "X-Authentication: $token" -H 'Content-Type: application/json' \
    --data-binary @"$work/job.json" "$api/command/task") || die "the job was refused"
  id=$(jq -r '.job.name' <<< "$body")
  # Polled as lightly as a client can (one curl every 0.25 s, the state read by bash): on one
  # machine the poller's CPU is taken from the nodes' sshds. At most 0.25 s of the wall time is
  # the poll's resolution, and it counts against Kick.
  while :; do
    body=$(curl -sf -H "X-Authentication: $token" "$api/jobs/$id") || body=
    [[ $body =~ \"state\":\"(finished|failed|stopped)\" ]] && { state=${BASH_REMATCH[1]}; break; }
    sleep 0.25
  done
  t1=$(now)
  c1=$(ticks "$orch_pid"); n1=$(node_ticks); b1=$(busy)
  kill "$sampler_pid"; wait "$sampler_pid" || true; sampler_pid=
  local fds rss ok
  read -r fds rss _ < "$work/sample"
  ok=$(curl -sf -H "X-Authentication: $token" "$api/jobs/$id" | jq -r '.node_states.finished // 0')
  if [ "$ok" != "$nodes" ]; then
    log "$label run $run: job $id $state, node states $(curl -sf -H "X-Authentication: $token" "$api/jobs/$id" | jq -c .node_states)"
    curl -sf -H "X-Authentication: $token" "$api/jobs/$id/nodes?limit=3&state=failed" \
      | jq -c '.items[] | {name, result}' >&2 || true
  fi
  record "$label" "$run" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
    $((c1 - c0)) "$rss" "$fds" $((n1 - n0)) $((b1 - b0 - (c1 - c0) - (n1 - n0))) "$ok"
}

run_kick() { # run
  # A first job finds each node's cache empty: clear what an earlier run left.
  rm -rf "$fleet"/tmp/*/kick-cache-* "$fleet"/tmp/*/kick-run-*
  start_orchestrator "$1"
  wait_idle
  kick_job kick "$1"
  local cached
  cached=$(find "$fleet/tmp" -mindepth 3 -maxdepth 3 -path '*/kick-cache-0/*' -type d | wc -l)
  [ "$cached" = "$nodes" ] || log "warning: after the first job $cached of $nodes nodes have the task cached"
  wait_idle
  touch "$work/before-second-job"
  kick_job kick-cached "$1"
  local uploads
  uploads=$(find "$fleet/tmp" -path '*/kick-cache-0/*' -newer "$work/before-second-job" | wc -l)
  [ "$uploads" = 0 ] || log "warning: the second job wrote $uploads files into the caches"
  stop_orchestrator
}

# A command under /usr/bin/time: records wall and its CPU with its children's.
run_timed() { # label run ok-check cmd...
  local label=$1 run=$2 check=$3 b0 b1 n0 n1 wall u s cpu ok rc=0
  shift 3
  wait_idle
  b0=$(busy); n0=$(node_ticks)
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || rc=$?
  n1=$(node_ticks); b1=$(busy)
  read -r wall u s rss < <(tail -n1 "$work/time")
  cpu=$(awk -v u="$u" -v s="$s" -v hz="$hz" 'BEGIN { printf "%d", (u + s) * hz + 0.5 }')
  ok=$($check)
  [ "$ok" = "$nodes" ] || log "$label run $run: $ok of $nodes ok (exit $rc): $(grep -v CHANGED "$work/out" | head -3) $(head -c 300 "$work/err")"
  record "$label" "$run" "$wall" "$cpu" "$rss" - $((n1 - n0)) $((b1 - b0 - cpu - (n1 - n0))) "$ok"
}
ansible_ok() { grep -c ' | CHANGED | rc=0 ' "$work/out" || true; }
xargs_ok() { grep -c '^ok$' "$work/out" || true; }
ssh_cmd="ssh -o BatchMode=yes -o ControlMaster=no -i $key -o UserKnownHostsFile=$kh root@\"\$0\" true && echo ok"
ssh_c25519_cmd="ssh -o BatchMode=yes -o ControlMaster=no -o KexAlgorithms=curve25519-sha256 -i $key -o UserKnownHostsFile=$kh root@\"\$0\" true && echo ok"

load_start=$(wait_load)
log "1-minute load $load_start: measuring $runs rounds of: $tools ($nodes nodes, concurrency $conc)"
t_bench=$SECONDS
for run in $(seq 1 "$runs"); do
  for tool in $tools; do
    case $tool in
      kick) run_kick "$run" ;;
      ansible) run_timed ansible "$run" ansible_ok "${ansible_env[@]}" "$venv/bin/ansible" all -m raw -a true -f "$conc" -o ;;
      xargs) run_timed xargs "$run" xargs_ok xargs -a "$work/addresses" -P "$conc" -n 1 sh -c "$ssh_cmd" ;;
      xargs-c25519) run_timed xargs-c25519 "$run" xargs_ok xargs -a "$work/addresses" -P "$conc" -n 1 sh -c "$ssh_c25519_cmd" ;;
      *) die "unknown tool $tool" ;;
    esac
    [ "$tool" != kick ] || log "$(tail -n2 "$results" | head -n1 | cut -f1-3 | tr '\t' ' ') s"
    log "$(tail -n1 "$results" | cut -f1-3 | tr '\t' ' ') s"
  done
done

# Optionally, one more Kick round (not in the table) under `perf record -a`: where the machine's
# CPU goes during the jobs (by command), and the orchestrator's own hottest symbols.
profile() { # label
  local perf_pid
  perf record -q -a -g -F 499 -o "$work/perf-$1.data" > /dev/null 2>&1 &
  perf_pid=$!
  sleep 1
  kick_job "$1" profile
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  echo "### $1: CPU by command, whole machine (perf record -a)"
  echo
  echo '```'
  perf report -i "$work/perf-$1.data" --no-children --sort comm --stdio 2> /dev/null | awk '/^ +[0-9]/ && n++ < 15' || true
  echo '```'
  echo
  echo "### $1: the orchestrator's hottest symbols (share of its own samples)"
  echo
  echo '```'
  perf report -i "$work/perf-$1.data" --no-children --pid "$orch_pid" --percentage relative --sort dso,sym --stdio 2> /dev/null \
    | awk '/^ +[0-9]/ && n++ < 25' || true
  echo '```'
  echo
}
if [ "${KICK_SSH_BENCH_PROFILE:-0}" = 1 ]; then
  rm -rf "$fleet"/tmp/*/kick-cache-* "$fleet"/tmp/*/kick-run-*
  start_orchestrator profile
  wait_idle
  profile profile-first > "$work/profile.md"
  wait_idle
  profile profile-cached >> "$work/profile.md"
  stop_orchestrator
fi
"$fleet_sh" down
fleet_up=0

# --- the report ------------------------------------------------------------------------------
report() {
  awk -F'\t' -v n="$nodes" -v hz="$hz" -v runs="$runs" -v conc="$conc" \
      -v load="$load_start" -v ncpu="$ncpu" -v mins="$(( (SECONDS - t_bench) / 60 ))" '
    function median(s,   a, k, i, j, t) {
      k = split(s, a, " ")
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { tool[$1] = 1
      wall[$1] = wall[$1] " " $3; cpu[$1] = cpu[$1] " " $4; rss[$1] = rss[$1] " " $5
      fds[$1] = fds[$1] " " $6; node[$1] = node[$1] " " $7; other[$1] = other[$1] " " $8
      okk[$1] = okk[$1] " " $9; rows[$1] = rows[$1] sprintf("%s %.1f", (rows[$1] ? "," : ""), $3) }
    END {
      split("kick kick-cached ansible xargs xargs-c25519", list, " ")
      name["kick"] = "Kick (kick-orchestrator), first job"
      name["kick-cached"] = "Kick, second job (task cached)"
      name["ansible"] = "Ansible `-m raw -a true`"
      name["xargs"] = "xargs + ssh (the floor)"
      name["xargs-c25519"] = "xargs + ssh, curve25519 KEX"
      printf "%d SSH nodes, concurrency %d, %d runs of each, alternating; medians. %d CPUs; 1-minute load %s when the measured runs started, each run started on idle CPUs; %d min.\n\n", n, conc, runs, ncpu, load, mins
      print "| tool | wall s (median) | node-runs/s | CPU s total | CPU ms per node | peak RSS MiB | peak fds | node side CPU s | other CPU s | nodes ok | wall s of each run |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
      for (i = 1; i <= 5; i++) {
        t = list[i]; if (!(t in tool)) continue
        w = median(wall[t]); c = median(cpu[t]) / hz
        W[t] = w; C[t] = c; R[t] = median(rss[t]) / 1024
        f = (t ~ /^kick/) ? sprintf("%d", median(fds[t])) : "n/a"
        r = (t ~ /^kick/) ? sprintf("%.0f", R[t]) : sprintf("%.0f (largest process)", R[t])
        printf "| %s | %.1f | %.1f | %.2f | %.1f | %s | %s | %.1f | %.1f | %s | %s |\n", name[t], w, n / w, c, c * 1000 / n, r, f, median(node[t]) / hz, median(other[t]) / hz, median(okk[t]), rows[t]
      }
      print ""
      print "CPU: for Kick the service process alone (utime + stime over the job); for Ansible its Python and every ssh it ran, for xargs every sh and ssh (/usr/bin/time, children waited for). Node side: the fleet'"'"'s sshds and everything they ran (their children'"'"'s times). Other: the rest of the machine'"'"'s busy time over the run (the poller, the sampler, anything else)."
      print ""
      print "Targets (issue 17):"
      if ("kick" in tool && "ansible" in tool) {
        x = W["ansible"] / W["kick"]
        printf "- %s: at least 5x Ansible'"'"'s throughput: %.1fx (%.1f vs %.1f node-runs/s)\n", (x >= 5 ? "MET" : "MISSED"), x, n / W["kick"], n / W["ansible"]
      }
      if ("kick" in tool && "xargs" in tool)
        printf "- %s: faster than the xargs floor in wall time: %.1f s vs %.1f s (%.2fx)\n", (W["kick"] < W["xargs"] ? "MET" : "MISSED"), W["kick"], W["xargs"], W["xargs"] / W["kick"]
      if ("kick" in tool)
        printf "- %s: the orchestrator'"'"'s CPU at most 14 ms a node-run: %.1f ms (first job), %.1f ms (second job)\n", (C["kick"] * 1000 / n <= 14 && C["kick-cached"] * 1000 / n <= 14 ? "MET" : "MISSED"), C["kick"] * 1000 / n, C["kick-cached"] * 1000 / n
      if ("kick" in tool)
        printf "- %s: RSS under 256 MiB with %d sessions open: peak %.0f MiB (first job), %.0f MiB (second job)\n", (R["kick"] < 256 && R["kick-cached"] < 256 ? "MET" : "MISSED"), conc, R["kick"], R["kick-cached"]
    }' "$results"
}
{
  echo "## SSH fleet scale: $nodes nodes"
  echo
  echo "Machine: $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(free -g | awk '/^Mem:/ { print $2 }') GiB; $openssh_version (openssh-server $sshd_version); ansible-core $ansible_version on Python $python_version; kick-orchestrator $("$orch" --version | awk '{ print $2 }') (russh, key exchange curve25519-sha256 with this sshd); $(date -u +%F)."
  echo
  report
  if [ -s "$work/profile.md" ]; then echo; cat "$work/profile.md"; fi
} > "$work/report.md"
cat "$work/report.md"
if [ -n "$out" ]; then
  cp "$work/report.md" "$out"
fi
