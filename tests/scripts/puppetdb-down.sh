#!/usr/bin/env bash
# Stop the PuppetDB and the PostgreSQL cluster started by puppetdb-up.sh, by their recorded
# PIDs only (SIGTERM, up to 60 s, then SIGKILL for PuppetDB; PostgreSQL's fast shutdown).
# The cluster's data stays in $PDB_STATE/pg, so the next start reuses it.
# Env: PDB_STATE (default /tmp/kick-puppetdb)
set -u
PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb}
log() { echo "[puppetdb] $*" >&2; }
t0=$(date +%s)

rm -f "$PDB_STATE/started"
pid=$(cat "$PDB_STATE/puppetdb.pid" 2>/dev/null || true)
case $pid in
  '') log "no PuppetDB pid file in $PDB_STATE" ;;
  *[!0-9]*) log "bad pid file $PDB_STATE/puppetdb.pid"; exit 1 ;;
  *)
    # Guard against a recycled PID: only signal the PuppetDB JVM.
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'puppetlabs.puppetdb.core'; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGTERM for 60 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      log "PuppetDB $pid stopped in $(( $(date +%s) - t0 ))s"
    else
      log "pid $pid is not a running PuppetDB; removing stale pid file"
    fi
    rm -f "$PDB_STATE/puppetdb.pid"
    ;;
esac

pgpid=$(head -n1 "$PDB_STATE/pg/data/postmaster.pid" 2>/dev/null || true)
case $pgpid in
  ''|*[!0-9]*) ;;
  *)
    if tr '\0' ' ' < "/proc/$pgpid/cmdline" 2>/dev/null | grep -q "postgres.*$PDB_STATE/pg/data"; then
      kill -INT "$pgpid" 2>/dev/null || true # PostgreSQL's "fast" shutdown
      for _ in $(seq 1 60); do kill -0 "$pgpid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pgpid" 2>/dev/null && { log "PostgreSQL $pgpid still running after 30 s; sending SIGQUIT"; kill -QUIT "$pgpid" 2>/dev/null || true; }
      log "PostgreSQL $pgpid stopped"
    fi
    ;;
esac
echo "$(date -u +%FT%TZ) PuppetDB and PostgreSQL stopped in $(( $(date +%s) - t0 ))s" >> "$PDB_STATE/timings.log" 2>/dev/null || true
