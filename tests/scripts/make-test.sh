#!/usr/bin/env bash
# `make test` after the task and the module are built: bring up (or reuse) the loopback
# puppetserver, PuppetDB and the SSH fleet (tests/scripts/fleet.sh), run every test suite with
# the stack required, then the linters.
# A server this script started is always stopped at the end (by its recorded PID); a server
# that was already running (a developer's instance) is left alone. Exit code: the tests'
# if they failed, else the linters'.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
cd "$root"

export PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb}
export FLEET_STATE=${FLEET_STATE:-/tmp/kick-fleet}
started=0 pdb_started=0 fleet_nodes=() fleet_up=none
stop_ours() {
  # The fleet's nodes this run started (fleet.sh up lists them in $FLEET_STATE/started as it
  # starts them), by their recorded PIDs; nodes that were already running are left alone.
  if [ "$fleet_up" = starting ] && [ -s "$FLEET_STATE/started" ]; then
    mapfile -t fleet_nodes < "$FLEET_STATE/started"
  fi
  if [ ${#fleet_nodes[@]} -gt 0 ]; then "$here/fleet.sh" down-node "${fleet_nodes[@]}" || true; fi
  if [ "$pdb_started" = 1 ]; then "$here/puppetdb-down.sh" || true; fi
  if [ "$started" = 1 ]; then "$here/puppet-stack-down.sh" || true; fi
}
trap stop_ours EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
# Learn ownership before the wait ends, so an interrupted start is still cleaned up.
mkdir -p "$PS_STATE"
rm -f "$PS_STATE/started"
"$here/puppet-stack-up.sh" &
up_pid=$!
while kill -0 "$up_pid" 2>/dev/null && [ ! -e "$PS_STATE/started" ]; do sleep 0.5; done
[ -e "$PS_STATE/started" ] && started=1
wait "$up_pid"
echo "[make test] puppet stack ready in $(( $(date +%s) - t0 ))s (started by this run: $started)"

# PuppetDB after the server (its TLS port uses the Puppet CA the server creates); the same
# ownership rule: stopped at the end only if this run started it.
tp=$(date +%s)
mkdir -p "$PDB_STATE"; rm -f "$PDB_STATE/started"
"$here/puppetdb-up.sh" > "$PDB_STATE/up.out" &
up_pid=$!
while kill -0 "$up_pid" 2>/dev/null && [ ! -e "$PDB_STATE/started" ]; do sleep 0.5; done
[ -e "$PDB_STATE/started" ] && pdb_started=1
wait "$up_pid"
while IFS= read -r line; do
  case $line in KICK_TEST_PUPPETDB_URL=*|KICK_TEST_PUPPETDB_TLS_URL=*) export "${line?}" ;; esac
done < "$PDB_STATE/up.out"
echo "[make test] PuppetDB ready in $(( $(date +%s) - tp ))s at $KICK_TEST_PUPPETDB_URL (started by this run: $pdb_started)"

# The SSH fleet after the server (its agents get their certificates from it). A fleet already
# running in $FLEET_STATE is reused and left running; the `started` file is emptied first so
# that an interrupted start is still cleaned up.
tf=$(date +%s)
mkdir -p "$FLEET_STATE"; : > "$FLEET_STATE/started"
fleet_up=starting
"$here/fleet.sh" up > "$FLEET_STATE/up.out"
# Ownership read once, now: tests restart nodes (fleet.sh up-node) without changing it.
mapfile -t fleet_nodes < "$FLEET_STATE/started"
fleet_up=done
echo "[make test] SSH fleet ready in $(( $(date +%s) - tf ))s: $(wc -l < "$FLEET_STATE/nodes.list") nodes (started by this run: ${#fleet_nodes[@]})"

export KICK_PUPPET_STACK=$PS_STATE KICK_REQUIRE_STACK=1 KICK_FLEET=$FLEET_STATE
t1=$(date +%s)
rc=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || rc=$?
else
  echo "[make test] cargo-nextest not found; using cargo test"
  cargo test --workspace --no-fail-fast || rc=$?
fi
echo "[make test] tests finished in $(( $(date +%s) - t1 ))s (rc=$rc)"

# psick-task's unit and integration suites again, against the aarch64 build under qemu-user.
ta=$(date +%s)
arm_rc=0
"$here/aarch64-test.sh" || arm_rc=$?
echo "[make test] aarch64 suites under qemu finished in $(( $(date +%s) - ta ))s (rc=$arm_rc)"
[ "$rc" != 0 ] || rc=$arm_rc

lint_rc=0
make --no-print-directory lint || lint_rc=$?
echo "[make test] total $(( $(date +%s) - t0 ))s (tests rc=$rc, lint rc=$lint_rc)"
if [ "$rc" != 0 ]; then exit "$rc"; fi
exit "$lint_rc"
