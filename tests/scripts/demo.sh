#!/usr/bin/env bash
# Kick's main job, for a newcomer: a loopback puppetserver, the orchestrator emulator with
# three simulated nodes (each its own certname, confdir, vardir, ssldir), and
# psick::puppet_agent run through the Orchestrator API: first a noop run that shows the
# pending changes, then a real run; per-node results are printed.
#
# Uses the kick CLI when it is built (target/debug/kick), else curl and polling.
# Everything this script starts is stopped at the end, by PID; a puppetserver that was
# already running is left alone.
#
# Env: PS_STATE (puppet stack state dir, default /tmp/kick-puppet-stack),
#      KICK_DEMO_DIR (default /tmp/kick-demo), KICK_DEMO_PORT (default 8143),
#      KICK_DEMO_BUILD=0 to skip building, KICK_DEMO_CURL=1 to use curl even if kick exists.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
demo=${KICK_DEMO_DIR:-/tmp/kick-demo}
port=${KICK_DEMO_PORT:-8143}
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-$root/target}
cd "$root"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

emu_pid= stack_ours=0
cleanup() {
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  if [ "$stack_ours" = 1 ]; then "$here/puppet-stack-down.sh" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Build: the static task binary (staged at tasks/puppet_agent), the emulator, kick.
if [ "${KICK_DEMO_BUILD:-1}" = 1 ]; then
  say "building the task binary, the emulator and kick"
  make task
  "$cargo" build -p orchestrator-emulator --bin orchestrator-emulator
  "$cargo" build -p kick --bin kick 2>/dev/null || echo "(kick not buildable yet; using curl)"
fi
[ -x tasks/puppet_agent ] || die "tasks/puppet_agent is missing: run \`make task\`"
emulator=$target/debug/orchestrator-emulator
[ -x "$emulator" ] || die "$emulator is missing: run \`cargo build -p orchestrator-emulator\`"

# 2. The loopback puppetserver (installs Debian's puppet packages when missing; needs root).
say "loopback puppetserver on https://127.0.0.1:8140"
if [ "$(id -u)" != 0 ]; then
  die "the Puppet stack needs root (it installs puppet-agent and puppetserver and starts the server)"
fi
mkdir -p "$PS_STATE"
rm -f "$PS_STATE/started"
"$here/puppet-stack-up.sh"
[ -e "$PS_STATE/started" ] && stack_ours=1

# 3. Three simulated nodes. The CA signs a certname once, so each demo run uses new ones.
say "three simulated nodes"
rm -rf "$demo"
mkdir -p "$demo/nodes" "$demo/state"
run_id=$(date +%s)
nodes=()
inv="$demo/inventory.yaml"
echo "nodes:" > "$inv"
for i in 1 2 3; do
  certname="demo$i-$run_id.example"
  nodes+=("$certname")
  env_lines=$("$here/sim-node.sh" --bootstrap "$certname" "$demo/nodes/$certname")
  {
    echo "  - certname: $certname"
    echo "    workdir: $demo/nodes/$certname"
    echo "    env:"
    while IFS='=' read -r k v; do echo "      $k: \"$v\""; done <<< "$env_lines"
  } >> "$inv"
  echo "  $certname (confdir $demo/nodes/$certname/etc)"
done
node_list=$(IFS=,; echo "${nodes[*]}")

# 4. The emulator: TLS with a generated CA (pinned by the clients), a fresh token.
say "orchestrator emulator on https://127.0.0.1:$port (module psick = this repository)"
token_file="$demo/token"
( umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file" )
"$emulator" --listen "127.0.0.1:$port" --tokens-file "$token_file" --inventory "$inv" \
  --module "psick=$root" --state-dir "$demo/state" > "$demo/emulator.out" 2> "$demo/emulator.log" &
emu_pid=$!
for _ in $(seq 1 100); do
  grep -q 'listening' "$demo/emulator.out" 2>/dev/null && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$demo/emulator.log" >&2; die "the emulator did not start"; }
  sleep 0.1
done
cat "$demo/emulator.out"
url="https://127.0.0.1:$port"
cacert="$demo/state/ca.pem"

kick=$target/debug/kick
use_kick=0
if [ "${KICK_DEMO_CURL:-0}" != 1 ] && [ -x "$kick" ] && "$kick" agent --help >/dev/null 2>&1; then
  use_kick=1
fi

api() { # METHOD PATH [BODY]
  local args=(-sS --fail-with-body --cacert "$cacert" -H "X-Authentication: $(cat "$token_file")")
  if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' -d "$3"); fi
  curl "${args[@]}" -X "$1" "$url/orchestrator/v1$2"
}
json_field() { # KEY: first string or number value of "KEY" in stdin
  sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" | head -n1
}

run_agent() { # noop|real
  local mode=$1
  if [ "$use_kick" = 1 ]; then
    local flag=--no-noop
    [ "$mode" = noop ] && flag=--noop
    local rc=0
    "$kick" agent "$flag" --nodes "$node_list" --service-url "$url" --cacert "$cacert" \
      --token-file "$token_file" --show-output none --color never || rc=$?
    # kick exits 0 (no changes) or 2 (changes, or pending changes in noop) when all succeed.
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || die "kick agent exited $rc"
    return
  fi
  local noop=false
  [ "$mode" = noop ] && noop=true
  local nodes_json
  nodes_json=$(printf '"%s",' "${nodes[@]}")
  local job
  job=$(api POST /command/task \
    "{\"task\":\"psick::puppet_agent\",\"environment\":\"production\",\"params\":{\"noop\":$noop},\"scope\":{\"nodes\":[${nodes_json%,}]}}" \
    | json_field name)
  echo "job $job started; polling"
  local state=
  for _ in $(seq 1 600); do
    state=$(api GET "/jobs/$job" | tr -d '\n' | sed 's/"status" *: *\[.*//' | json_field state)
    case $state in finished|failed|stopped) break ;; esac
    sleep 1
  done
  echo "job $job: $state"
  # One line per node: name, node state, run status, resource counts.
  api GET "/jobs/$job/nodes" | tr -d '\n' | sed 's/},{"/}\n{"/g' | while read -r item || [ -n "$item" ]; do
    local name st status pending changed
    name=$(json_field name <<< "$item")
    st=$(json_field state <<< "$item")
    status=$(json_field status <<< "$item")
    pending=$(json_field noop_pending <<< "$item")
    changed=$(json_field changed <<< "$item")
    printf '  %-32s %-9s status=%-9s changed=%s noop_pending=%s\n' "$name" "$st" "$status" "$changed" "$pending"
  done
}

say "noop run: what would change"
run_agent noop
say "real run: apply the changes"
run_agent real
say "done: job history is kept in $demo/state/jobs; the emulator and any stack started here stop now"
