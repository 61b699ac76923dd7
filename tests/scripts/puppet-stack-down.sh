#!/usr/bin/env bash
# Stop the puppetserver started by puppet-stack-up.sh, by its recorded PID only
# (SIGTERM, up to 60 s for a clean shutdown, then SIGKILL).
# Env: PS_STATE (default /tmp/kick-puppet-stack)
set -u
PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
log() { echo "[puppet-stack] $*" >&2; }

pid=$(cat "$PS_STATE/puppetserver.pid" 2>/dev/null) || { log "no pid file in $PS_STATE; nothing to stop"; exit 0; }
rm -f "$PS_STATE/started"
case $pid in ''|*[!0-9]*) log "bad pid file $PS_STATE/puppetserver.pid"; exit 1 ;; esac
# Guard against a recycled PID: only signal a JVM running puppetserver.jar.
if ! tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'puppetserver.jar'; then
  log "pid $pid is not a running puppetserver; removing stale pid file"
  rm -f "$PS_STATE/puppetserver.pid"
  exit 0
fi
t0=$(date +%s)
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then
  log "pid $pid ignored SIGTERM for 60 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$PS_STATE/puppetserver.pid"
echo "$(date -u +%FT%TZ) puppetserver $pid stopped in $(( $(date +%s) - t0 ))s" >> "$PS_STATE/timings.log"
log "puppetserver $pid stopped in $(( $(date +%s) - t0 ))s"
