#!/usr/bin/env bash
# Kick's main job, for a newcomer: a loopback puppetserver, three real SSH nodes (web1.demo,
# web2.demo, web3.demo: each an sshd in its own mount, UTS and PID namespace on its own loopback
# address, with its own filesystem, users, sudo and puppet agent; tests/scripts/fleet.sh), the
# Kick orchestrator reaching them over SSH as their `kick` user with sudo to root (from a Bolt
# inventory file), and kick running psick::puppet_agent on them through the Orchestrator API:
# a noop run that shows what would change (exit 2), a real run that changes it (exit 2), a run
# that finds the nodes converged (exit 0), then a noop run after someone edited a file on
# web2.demo by hand, which finds the drift on that node only (exit 2). Each kick command is
# printed before it runs.
#
# Usage: demo.sh [all|up|run|down]
#   all   (default) up, run, then down, unless KICK_DEMO_KEEP=1 leaves everything running
#   up    build what the demo needs, start the stack, the nodes and the orchestrator; print the
#         commands to try kick by hand (`make demo-up`)
#   run   the three kick runs against what `up` started; exit 1 unless they exit 2, 2, 0
#   down  stop the orchestrator and, when `up` started it, the puppetserver, by PID (`make demo-down`)
#
# Env: PS_STATE (puppet stack state dir, default /tmp/kick-puppet-stack),
#      KICK_DEMO_DIR (default /tmp/kick-demo), KICK_DEMO_PORT (default 8143),
#      KICK_DEMO_ADDR (the first node's loopback address, default 127.0.1.201),
#      KICK_DEMO_BUILD=0 to skip building, KICK_DEMO_KEEP=1 to leave everything running.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
demo=${KICK_DEMO_DIR:-/tmp/kick-demo}
port=${KICK_DEMO_PORT:-8143}
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-$root/target}
bindir=$target/debug
action=${1:-all}
demo_addr=${KICK_DEMO_ADDR:-127.0.1.201}
demo_nodes=(web1.demo web2.demo web3.demo)
cd "$root"

# Bold headers only on a terminal; piped output stays plain text.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
die() { echo "demo: $*" >&2; exit 1; }

# The orchestrator this demo started, recorded so `down` (or another shell) can stop it by PID.
orchestrator_pid() {
  local pid
  pid=$(cat "$demo/orchestrator.pid" 2>/dev/null) || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  # Guard against a recycled PID: only our orchestrator binary counts.
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kick-orchestrator' || return 1
  echo "$pid"
}

down() {
  local pid
  if pid=$(orchestrator_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "demo: orchestrator (pid $pid) stopped"
  fi
  rm -f "$demo/orchestrator.pid"
  # The nodes, by the PIDs the fleet recorded (what puppet changed lived in their own /tmp).
  if [ -d "$demo/fleet" ]; then
    FLEET_STATE="$demo/fleet" "$here/fleet.sh" down || true
  fi
  if [ -e "$demo/stack-ours" ]; then
    "$here/puppet-stack-down.sh" || true
    rm -f "$demo/stack-ours"
  fi
}

build() {
  [ "${KICK_DEMO_BUILD:-1}" = 1 ] || return 0
  say "building the task binary, the orchestrator and kick (a first build takes 3 to 5 minutes on 2 cores; later ones seconds)"
  local t0
  t0=$(date +%s)
  make --no-print-directory task
  "$cargo" build -p kick-orchestrator --bin kick-orchestrator -p kick --bin kick
  echo "built in $(( $(date +%s) - t0 ))s"
}

up() {
  build
  [ -x "files/$(uname -m)/psick-task" ] || die "files/$(uname -m)/psick-task is missing: run \`make task\`"
  [ -x "$bindir/kick-orchestrator" ] || die "$bindir/kick-orchestrator is missing: run \`cargo build -p kick-orchestrator\`"
  [ -x "$bindir/kick" ] || die "$bindir/kick is missing: run \`cargo build -p kick\`"
  [ "$(id -u)" = 0 ] || die "the Puppet stack needs root (it installs packages and starts puppetserver)"
  if orchestrator_pid >/dev/null; then die "a demo is already up in $demo: run \`$0 down\` first"; fi

  say "loopback puppetserver on https://127.0.0.1:8140"
  mkdir -p "$PS_STATE"
  rm -f "$PS_STATE/started"
  "$here/puppet-stack-up.sh"
  rm -rf "$demo"
  mkdir -p "$demo/nodes" "$demo/state"
  [ -e "$PS_STATE/started" ] && touch "$demo/stack-ours"

  say "three real SSH nodes: ${demo_nodes[*]}"
  FLEET_STATE="$demo/fleet" FLEET_NODES="${demo_nodes[*]}" FLEET_BASE_ADDR="$demo_addr" \
    "$here/fleet.sh" up > /dev/null || die "the nodes did not start (see $demo/fleet)"
  (IFS=,; echo "${demo_nodes[*]}") > "$demo/nodes.txt"
  # The orchestrator's view of them, as an OpenBolt user keeps it: a Bolt inventory file.
  local inv=$demo/inventory.yaml i addr
  {
    echo "# The demo's nodes: login kick with the fleet's key, sudo to root with kick's password."
    echo "version: 2"
    echo "config:"
    echo "  transport: ssh"
    echo "  ssh:"
    echo "    user: kick"
    echo "    private-key: $demo/fleet/id_ed25519"
    echo "    run-as: root"
    echo "    sudo-password: \"$(cat "$demo/fleet/password")\""
    echo "    host-key-check: true"
    echo "targets:"
    i=0
    for n in "${demo_nodes[@]}"; do
      addr=$(jq -r --arg n "$n" '.nodes[] | select(.certname == $n) | .address' "$demo/fleet/fleet.json")
      echo "  - name: $n"
      echo "    uri: $addr"
      i=$((i + 1))
    done
  } > "$inv"
  chmod 600 "$inv"
  # Host keys are checked: the nodes' keys go in the orchestrator's own known_hosts.
  cp "$demo/fleet/known_hosts" "$demo/state/known_hosts"
  for n in "${demo_nodes[@]}"; do
    addr=$(jq -r --arg n "$n" '.nodes[] | select(.certname == $n) | .address' "$demo/fleet/fleet.json")
    echo "  $n: ssh kick@$addr, with its own /etc/puppet, /tmp, users and sudo"
  done

  say "Kick orchestrator on https://127.0.0.1:$port (module psick = this repository)"
  ( umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$demo/token" )
  # The environments the puppetserver really has, so the orchestrator knows the same ones.
  local envs=() e
  for e in /etc/puppet/code/environments/*/; do envs+=(--environment "$(basename "$e")"); done
  "$bindir/kick-orchestrator" --listen "127.0.0.1:$port" --tokens-file "$demo/token" \
    --inventory-file "$inv" --module "psick=$root" --state-dir "$demo/state" "${envs[@]}" \
    > "$demo/orchestrator.out" 2> "$demo/orchestrator.log" < /dev/null &
  local pid=$!
  echo "$pid" > "$demo/orchestrator.pid"
  # Ready means answering over TLS with the CA it wrote, not only the "listening" line.
  local ready=0
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { cat "$demo/orchestrator.log" >&2; die "the orchestrator did not start"; }
    if [ -s "$demo/state/ca.pem" ] && curl -s -o /dev/null --max-time 2 --cacert "$demo/state/ca.pem" \
        "https://127.0.0.1:$port/orchestrator/v1"; then
      ready=1; break
    fi
    sleep 0.1
  done
  [ "$ready" = 1 ] || die "the orchestrator did not answer in 20 s (see $demo/orchestrator.log)"
  cat "$demo/orchestrator.out"
  cat > "$demo/env" <<ENV
export PATH="$bindir:\$PATH"
export KICK_SERVICE_URL=https://127.0.0.1:$port
export KICK_CACERT=$demo/state/ca.pem
export KICK_TOKEN_FILE=$demo/token
ENV
}

try_by_hand() {
  local nodes
  nodes=$(cat "$demo/nodes.txt")
  say "try kick by hand"
  cat <<TXT
  . $demo/env          # kick on PATH, and where the orchestrator is (KICK_SERVICE_URL, KICK_CACERT, KICK_TOKEN_FILE)
  kick agent --nodes $nodes --noop -e demo
  kick agent --nodes $nodes -e production --show-output all
  kick job list
  kick job show 1
  kick task run psick::puppet_unlock --nodes $nodes
  kick tasks list
  kick --help
TXT
}

run() {
  [ -f "$demo/env" ] && orchestrator_pid >/dev/null || die "nothing is up in $demo: run \`$0 up\` first"
  # shellcheck disable=SC1091 # written by up()
  . "$demo/env"
  local nodes codes=() expected=(2 2 0 2) labels rc i
  nodes=$(cat "$demo/nodes.txt")
  labels=("noop run: what would change on each node" "real run: apply the changes" "again: the nodes are converged, nothing to do"
    "someone edited web2.demo's app.conf by hand: a noop run finds the drift on that node only")
  local flags=("--noop" "--no-noop" "--no-noop" "--noop")
  for i in 0 1 2 3; do
    if [ "$i" = 3 ]; then
      local pid
      pid=$(cut -d' ' -f1 "$demo/fleet/nodes/web2.demo/pid")
      printf 'workers = 16   # tuned by hand\n' >> "/proc/$pid/root/tmp/kick-demo-managed/web2.demo/app.conf"
    fi
    say "${labels[$i]}"
    printf '$ kick agent --nodes %s %s -e demo\n' "$nodes" "${flags[$i]}"
    rc=0
    kick agent --nodes "$nodes" "${flags[$i]}" -e demo || rc=$?
    echo "kick exited $rc (expected ${expected[$i]})"
    codes+=("$rc")
  done
  echo
  echo "exit codes: ${codes[*]} (0: nothing changed; 2: changes, or changes pending in noop; 4: failures; see kick --help)"
  [ "${codes[*]}" = "${expected[*]}" ] || die "expected exit codes ${expected[*]}, got ${codes[*]}"
}

case $action in
  up) up; try_by_hand; echo; echo "stop it with: make demo-down (or $0 down)" ;;
  run) run ;;
  down) down ;;
  all)
    if [ "${KICK_DEMO_KEEP:-0}" != 1 ]; then
      trap down EXIT
    fi
    trap 'exit 130' INT TERM
    up
    run
    try_by_hand
    if [ "${KICK_DEMO_KEEP:-0}" = 1 ]; then
      echo
      echo "KICK_DEMO_KEEP=1: the orchestrator (pid $(cat "$demo/orchestrator.pid")) and the stack stay up; stop them with: make demo-down (or $0 down)"
    else
      echo
      echo "the orchestrator and any stack started here stop now; KICK_DEMO_KEEP=1 make demo (or make demo-up) leaves them running"
    fi
    ;;
  *) echo "usage: $0 [all|up|run|down]" >&2; exit 2 ;;
esac
