#!/usr/bin/env bash
# `make test` after the task and the module are built: bring up (or reuse) the loopback
# puppetserver and PuppetDB, run every test suite with the stack required, then the linters.
# A server this script started is always stopped at the end (by its recorded PID); a server
# that was already running (a developer's instance) is left alone. Exit code: the tests'
# if they failed, else the linters'.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
cd "$root"

export PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb}
started=0 pdb_started=0
stop_ours() {
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

export KICK_PUPPET_STACK=$PS_STATE KICK_REQUIRE_STACK=1
t1=$(date +%s)
rc=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast || rc=$?
else
  echo "[make test] cargo-nextest not found; using cargo test"
  cargo test --workspace --no-fail-fast || rc=$?
fi
echo "[make test] tests finished in $(( $(date +%s) - t1 ))s (rc=$rc)"

lint_rc=0
make --no-print-directory lint || lint_rc=$?
echo "[make test] total $(( $(date +%s) - t0 ))s (tests rc=$rc, lint rc=$lint_rc)"
if [ "$rc" != 0 ]; then exit "$rc"; fi
exit "$lint_rc"
