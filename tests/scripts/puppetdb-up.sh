#!/usr/bin/env bash
# Bring up (or reuse) a loopback PuppetDB for the end-to-end suite: Debian's puppetdb 7.12 on
# its own PostgreSQL 15 cluster, both started without systemd, both on 127.0.0.1 only.
#   PostgreSQL  127.0.0.1:$PDB_PG_PORT, data in $PDB_STATE/pg (run as user postgres)
#   PuppetDB    http://127.0.0.1:$PDB_HTTP_PORT (queries, no auth: loopback only) and
#               https://localhost:$PDB_SSL_PORT (the puppetserver's terminus; the Puppet CA's
#               certificates), run as user puppetdb, small heap and pools.
# Follows /work/shared/reference/puppet-stack.md sections 7 and 9.
#
# Idempotent like puppet-stack-up.sh: when the PIDs recorded in $PDB_STATE are alive and
# PuppetDB answers "running", both are reused. The Puppet CA must exist (puppet-stack-up.sh
# creates it), since the TLS port uses the server's certificate.
#
# Env:
#   PDB_STATE          state dir (default /tmp/kick-puppetdb)
#   PDB_HTTP_PORT      plain-HTTP query port (default 8080)
#   PDB_SSL_PORT       TLS port for the puppetserver (default 8081)
#   PDB_PG_PORT        PostgreSQL port (default 5433)
#   PDB_READY_TIMEOUT  seconds to wait for PuppetDB (default 240)
# Output: the last two lines are `KICK_TEST_PUPPETDB_TLS_URL=https://localhost:<ssl port>` and
#   `KICK_TEST_PUPPETDB_URL=http://127.0.0.1:<port>` (the query URL); the state dir holds
#   puppetdb.pid, puppetdb.log, pg/ (cluster, postgres.log), timings.log, and `started` (only
#   when this call started PuppetDB, so callers know whether they own it).
set -euo pipefail

PDB_STATE=${PDB_STATE:-/tmp/kick-puppetdb}
PDB_HTTP_PORT=${PDB_HTTP_PORT:-8080}
PDB_SSL_PORT=${PDB_SSL_PORT:-8081}
PDB_PG_PORT=${PDB_PG_PORT:-5433}
PDB_READY_TIMEOUT=${PDB_READY_TIMEOUT:-240}
pgbin=/usr/lib/postgresql/15/bin
ssldir=/var/lib/puppet/ssl
status_url=http://127.0.0.1:$PDB_HTTP_PORT/status/v1/services/puppetdb-status

log() { echo "[puppetdb] $*" >&2; }
timing() { echo "$(date -u +%FT%TZ) $*" >> "$PDB_STATE/timings.log"; log "$*"; }
pdb_state() {
  curl -s --max-time 2 "$status_url" 2>/dev/null | sed -n 's/.*"state" *: *"\([a-z_]*\)".*/\1/p' | head -n1
}
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# Alive and really the PuppetDB JVM (a recycled PID must not count).
is_pdb_pid() {
  pid_alive "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q 'puppetlabs.puppetdb.core'
}
urls() {
  echo "KICK_TEST_PUPPETDB_TLS_URL=https://localhost:$PDB_SSL_PORT"
  echo "KICK_TEST_PUPPETDB_URL=http://127.0.0.1:$PDB_HTTP_PORT"
}
pg_pid() { head -n1 "$PDB_STATE/pg/data/postmaster.pid" 2>/dev/null || true; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$PDB_STATE/pg" -p "$PDB_PG_PORT" -U postgres "$@"; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root (starts PostgreSQL as user postgres and PuppetDB as user puppetdb)"
  exit 1
fi
for f in "$pgbin/initdb" "$pgbin/pg_ctl" /usr/share/puppetdb/puppetdb.jar; do
  [ -e "$f" ] || { log "$f is missing: run tests/scripts/install-deps.sh"; exit 1; }
done
if [ ! -r "$ssldir/certs/localhost.pem" ]; then
  log "no Puppet CA certificate at $ssldir/certs/localhost.pem: start the puppetserver first (tests/scripts/puppet-stack-up.sh)"
  exit 1
fi
mkdir -p "$PDB_STATE"
rm -f "$PDB_STATE/started"
t0=$(date +%s)

pid=$(cat "$PDB_STATE/puppetdb.pid" 2>/dev/null || true)
if is_pdb_pid "$pid"; then
  until [ "$(pdb_state)" = running ]; do
    pid_alive "$pid" || { log "PuppetDB (pid $pid) died while starting; see $PDB_STATE/puppetdb.log"; exit 1; }
    [ $(( $(date +%s) - t0 )) -lt "$PDB_READY_TIMEOUT" ] || { log "PuppetDB pid $pid not ready after ${PDB_READY_TIMEOUT}s"; exit 1; }
    sleep 1
  done
  timing "reusing running PuppetDB (pid $pid)"
  urls
  exit 0
fi
if [ -n "$(pdb_state)" ]; then
  log "something not started from $PDB_STATE answers on 127.0.0.1:$PDB_HTTP_PORT; set PDB_HTTP_PORT or stop it"
  exit 1
fi

# 1. PostgreSQL: a private cluster (passwords for TCP, peer for the socket in the state dir)
install -d -o postgres -g postgres -m 700 "$PDB_STATE/pg"
secret="$PDB_STATE/pg/.puppetdb-password"
if [ ! -s "$PDB_STATE/pg/data/PG_VERSION" ]; then
  t1=$(date +%s)
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$secret"
  chown postgres:postgres "$secret"; chmod 600 "$secret"
  as_postgres "$pgbin/initdb" -D "$PDB_STATE/pg/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 > "$PDB_STATE/pg/initdb.log" 2>&1 \
    || { log "initdb failed; see $PDB_STATE/pg/initdb.log"; exit 1; }
  fresh_db=1
  timing "PostgreSQL cluster created in $(( $(date +%s) - t1 ))s"
fi
pgpid=$(pg_pid)
if ! pid_alive "$pgpid"; then
  t1=$(date +%s)
  as_postgres "$pgbin/pg_ctl" -D "$PDB_STATE/pg/data" -w -t 60 -l "$PDB_STATE/pg/postgres.log" \
    -o "-p $PDB_PG_PORT -k $PDB_STATE/pg -c listen_addresses=127.0.0.1 -c max_connections=40 -c shared_buffers=32MB" \
    start > /dev/null || { log "PostgreSQL did not start; see $PDB_STATE/pg/postgres.log"; exit 1; }
  pgpid=$(pg_pid)
  timing "PostgreSQL started in $(( $(date +%s) - t1 ))s (pid $pgpid, port $PDB_PG_PORT)"
fi
password=$(cat "$secret")
if [ "${fresh_db:-0}" = 1 ] || ! psql_admin -tAc "select 1 from pg_roles where rolname='puppetdb'" | grep -q 1; then
  psql_admin -d postgres \
    -c "create role puppetdb login password '$password'" \
    -c "create role puppetdb_read login password '$password'" \
    -c "create database puppetdb owner puppetdb encoding 'UTF8' template template0"
  psql_admin -d puppetdb -c "create extension if not exists pg_trgm" -c "create extension if not exists pgcrypto" \
    -c "grant select on all tables in schema public to puppetdb_read" \
    -c "alter default privileges for user puppetdb in schema public grant select on tables to puppetdb_read"
fi

# 2. PuppetDB configuration in the state dir (the packaged /etc/puppetdb stays untouched)
conf=$PDB_STATE/conf
install -d -m 750 -g puppetdb "$conf" "$conf/ssl"
install -d -o puppetdb -g puppetdb -m 750 "$PDB_STATE/var"
install -m 644 "$ssldir/certs/ca.pem" "$conf/ssl/ca.pem"
install -m 644 "$ssldir/certs/localhost.pem" "$conf/ssl/cert.pem"
install -m 640 -g puppetdb "$ssldir/private_keys/localhost.pem" "$conf/ssl/key.pem"
cp /etc/puppetdb/conf.d/auth.conf /etc/puppetdb/bootstrap.cfg "$conf/"
cat > "$conf/logback.xml" <<'XML'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <root level="info"><appender-ref ref="STDOUT"/></root>
</configuration>
XML
cat > "$conf/config.ini" <<INI
[global]
vardir = $PDB_STATE/var
logging-config = $conf/logback.xml

[command-processing]
threads = 2
INI
# The default pools open 50 PostgreSQL backends (1.3 GiB RSS); 4 each is plenty here.
cat > "$conf/database.ini" <<INI
[database]
subname = //127.0.0.1:$PDB_PG_PORT/puppetdb
username = puppetdb
password = $password
maximum-pool-size = 4

[read-database]
subname = //127.0.0.1:$PDB_PG_PORT/puppetdb
username = puppetdb_read
password = $password
maximum-pool-size = 4
INI
chgrp puppetdb "$conf/database.ini"; chmod 640 "$conf/database.ini"
cat > "$conf/jetty.ini" <<INI
[jetty]
host = 127.0.0.1
port = $PDB_HTTP_PORT
ssl-host = 127.0.0.1
ssl-port = $PDB_SSL_PORT
ssl-key = $conf/ssl/key.pem
ssl-cert = $conf/ssl/cert.pem
ssl-ca-cert = $conf/ssl/ca.pem
INI
chmod 640 "$conf"/*.ini "$conf"/*.cfg "$conf"/auth.conf "$conf"/logback.xml
chgrp puppetdb "$conf"/*.ini "$conf"/*.cfg "$conf"/auth.conf "$conf"/logback.xml

# 3. PuppetDB: the packaged unit's java line, as user puppetdb, through setpriv so that $! is
#    the JVM itself (stop = SIGTERM to that PID).
t1=$(date +%s)
(
  cd "$PDB_STATE/var"
  exec setsid setpriv --reuid=puppetdb --regid=puppetdb --init-groups \
    /usr/bin/java -Xms64m -Xmx192m -XX:+UseSerialGC -Djava.security.egd=/dev/urandom \
      -XX:+CrashOnOutOfMemoryError \
      -cp /usr/share/puppetdb/puppetdb.jar clojure.main -m puppetlabs.puppetdb.core services \
      --config "$conf" --bootstrap-config "$conf/bootstrap.cfg"
) > "$PDB_STATE/puppetdb.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$PDB_STATE/puppetdb.pid"
echo "$pid" > "$PDB_STATE/started"
log "PuppetDB starting (pid $pid, log $PDB_STATE/puppetdb.log)"
until [ "$(pdb_state)" = running ]; do
  if ! pid_alive "$pid"; then
    log "PuppetDB (pid $pid) died; tail of $PDB_STATE/puppetdb.log:"
    tail -30 "$PDB_STATE/puppetdb.log" >&2 || true
    exit 1
  fi
  if [ $(( $(date +%s) - t1 )) -ge "$PDB_READY_TIMEOUT" ]; then
    log "PuppetDB not ready after ${PDB_READY_TIMEOUT}s (pid $pid still alive; see $PDB_STATE/puppetdb.log)"
    exit 1
  fi
  sleep 0.5
done
rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status" 2>/dev/null || echo '?')
timing "PuppetDB ready after $(( $(date +%s) - t1 ))s (pid $pid, RSS ${rss} MiB); total $(( $(date +%s) - t0 ))s"
urls
