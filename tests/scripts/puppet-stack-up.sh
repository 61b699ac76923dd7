#!/usr/bin/env bash
# Bring up (or reuse) a loopback Puppet stack for the end-to-end suite and the demo:
# Debian's puppet-agent 7 + puppetserver 7 on https://127.0.0.1:8140 (certname localhost,
# SANs localhost,puppet), autosign on, small heap, started without systemd as user puppet.
# Follows /work/shared/reference/puppet-stack.md (the tested recipe).
#
# Idempotent: when the PID recorded in $PS_STATE is alive and /status/v1/simple answers
# "running", the server is reused (only the test environments are refreshed).
#
# Env:
#   PS_STATE          state dir for pid, log and timings (default /tmp/kick-puppet-stack)
#   PS_READY_TIMEOUT  seconds to wait for the server to answer (default 400)
#   PS_NO_INSTALL=1   never call apt-get (fail if packages are missing)
# Output: the last line is `KICK_PUPPET_STACK=<state dir>`; the state dir holds
#   puppetserver.pid, puppetserver.log, timings.log, and `started` (present only when this
#   call started the server, so callers know whether they own it).
set -euo pipefail

PS_STATE=${PS_STATE:-/tmp/kick-puppet-stack}
PS_READY_TIMEOUT=${PS_READY_TIMEOUT:-400}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fixtures=$(cd "$here/../fixtures" && pwd)
envdir=/etc/puppet/code/environments
status_url=https://127.0.0.1:8140/status/v1/simple

log() { echo "[puppet-stack] $*" >&2; }
timing() { echo "$(date -u +%FT%TZ) $*" >> "$PS_STATE/timings.log"; log "$*"; }
server_status() { curl -sk --max-time 2 "$status_url" 2>/dev/null || true; }
recorded_pid() { cat "$PS_STATE/puppetserver.pid" 2>/dev/null || true; }
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# Alive and really a puppetserver JVM (a recycled PID must not count as a running server).
is_server_pid() {
  pid_alive "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q 'puppetserver.jar'
}

if [ "$(id -u)" != 0 ]; then
  log "must run as root (installs packages, edits /etc/puppet, starts puppetserver as user puppet)"
  exit 1
fi
mkdir -p "$PS_STATE"
rm -f "$PS_STATE/started"
t0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive

# 1. packages, only when missing: the one list in install-deps.sh
if [ "${PS_NO_INSTALL:-0}" = 1 ]; then
  "$here/install-deps.sh" --check
else
  "$here/install-deps.sh"
fi

# 2. test environments (copied over; other content of the environments, such as an installed
#    module under production/modules, is left alone)
install_environments() {
  mkdir -p "$envdir"
  for e in "$fixtures"/environments/*/; do
    name=$(basename "$e")
    mkdir -p "$envdir/$name/modules"
    cp -R "$e". "$envdir/$name/"
  done
  chmod -R a+rX /etc/puppet/code
  mkdir -p /tmp/kick-e2e
}

# 3. reuse a running server started from this state dir (or still starting)
wait_ready() {
  local pid=$1 t1
  t1=$(date +%s)
  until [ "$(server_status)" = running ]; do
    if ! pid_alive "$pid"; then
      log "puppetserver (pid $pid) died; tail of $PS_STATE/puppetserver.log:"
      tail -30 "$PS_STATE/puppetserver.log" >&2 || true
      exit 1
    fi
    if [ $(( $(date +%s) - t1 )) -ge "$PS_READY_TIMEOUT" ]; then
      log "puppetserver not ready after ${PS_READY_TIMEOUT}s (pid $pid still alive; see $PS_STATE/puppetserver.log)"
      exit 1
    fi
    sleep 1
  done
}

# 3b. the PuppetDB wiring (tests/scripts/puppetdb-up.sh runs the PuppetDB itself): facts,
#     catalogs and reports go to https://localhost:8081. soft_write_failure keeps compiles and
#     runs working while PuppetDB is down (the terminus otherwise fails every run with a 500
#     on replace_facts). Prints "changed" when a file was rewritten.
write_if_changed() { # FILE, content on stdin
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else install -m 644 "$tmp" "$1"; rm -f "$tmp"; echo changed; fi
}
wire_puppetdb() {
  local changes
  changes=$(
    write_if_changed /etc/puppet/puppetdb.conf <<'CONF'
# Written by tests/scripts/puppet-stack-up.sh: the loopback PuppetDB of tests/scripts/puppetdb-up.sh.
[main]
server_urls = https://localhost:8081
soft_write_failure = true
server_url_timeout = 10
CONF
    write_if_changed /etc/puppet/routes.yaml <<'CONF'
# Written by tests/scripts/puppet-stack-up.sh.
server:
  facts:
    terminus: puppetdb
    cache: yaml
CONF
    if ! grep -q '^storeconfigs_backend = puppetdb' /etc/puppet/puppet.conf; then
      sed -i '/^\[server\]/a storeconfigs = true\nstoreconfigs_backend = puppetdb\nreports = store,puppetdb' /etc/puppet/puppet.conf
      echo changed
    fi
  )
  [ -n "$changes" ]
}

pid=$(recorded_pid)
if is_server_pid "$pid"; then
  install_environments
  if [ "$(server_status)" != running ]; then
    log "puppetserver pid $pid is starting; waiting"
    wait_ready "$pid"
  fi
  if wire_puppetdb; then
    # Our own server, started before the PuppetDB wiring: a SIGHUP reloads it (same PID, ~5 s).
    log "PuppetDB wiring changed; reloading puppetserver pid $pid (SIGHUP)"
    kill -HUP "$pid"
    for _ in $(seq 1 20); do [ "$(server_status)" = running ] || break; sleep 0.5; done
    wait_ready "$pid"
    timing "puppetserver pid $pid reloaded for the PuppetDB wiring"
  fi
  timing "reusing running puppetserver (pid $pid)"
  echo "KICK_PUPPET_STACK=$PS_STATE"
  exit 0
fi
if [ "$(server_status)" = running ]; then
  # Someone else's server holds 127.0.0.1:8140; we can use it but must never stop it.
  install_environments
  rm -f "$PS_STATE/puppetserver.pid"
  timing "reusing a puppetserver on 127.0.0.1:8140 not started from $PS_STATE (it will not be stopped)"
  echo "KICK_PUPPET_STACK=$PS_STATE"
  exit 0
fi

# 4. configuration, exactly as the recipe
cat > /etc/puppet/puppet.conf <<'CONF'
[main]
server = localhost

[agent]
# Re-using the keep-alive connection right after the CSR PUT stalls ~30 s here
# (first run / `puppet ssl bootstrap`); no measurable cost on loopback otherwise.
http_keepalive_timeout = 0

[server]
certname = localhost
dns_alt_names = localhost,puppet
autosign = true
# Beyond the recipe: a simulated node re-created with a fresh ssldir under a name the CA has
# already signed (e.g. the demo's fixed node names) gets a new certificate instead of a refusal.
allow_duplicate_certs = true
CONF
wire_puppetdb || true
sed -i 's/^JAVA_ARGS=.*/JAVA_ARGS="-Xms128m -Xmx512m -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger"/' /etc/default/puppetserver
sed -i 's/ssl-host: 0.0.0.0/ssl-host: 127.0.0.1/' /etc/puppet/puppetserver/conf.d/webserver.conf

# Container hosts: root cannot read /proc/1/environ, and Facter's container detection then prints
# 18 "Error: Facter: Permission denied" lines per run (Debian's Facter reads this path).
mkdir -p /etc/facter
cat > /etc/facter/facter.conf <<'CONF'
facts : {
  blocklist : [ "virtualization", "hypervisors", "uptime", "EC2", "az_metadata" ]
}
CONF
install_environments

# 5. start puppetserver without systemd: the packaged unit's java line, as user puppet,
#    through setpriv so that $! is the JVM itself (stop = SIGTERM to that PID).
set -a; . /etc/default/puppetserver; set +a
install -d -o puppet -g puppet -m 755 /run/puppetserver
t1=$(date +%s)
(
  cd /usr/share/puppetserver
  # shellcheck disable=SC2086 # JAVA_ARGS is a word list by design
  exec setsid setpriv --reuid=puppet --regid=puppet --init-groups \
    /usr/bin/java $JAVA_ARGS -Dlogappender=STDOUT \
      -Djruby.lib=/usr/share/jruby/lib \
      -XX:+CrashOnOutOfMemoryError \
      -XX:ErrorFile=/var/log/puppetserver/puppetserver_err_pid%p.log \
      -jar /usr/share/puppetserver/puppetserver.jar \
      --config /etc/puppet/puppetserver/conf.d \
      --bootstrap-config /etc/puppet/puppetserver/services.d
) > "$PS_STATE/puppetserver.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$PS_STATE/puppetserver.pid"
echo "$pid" > "$PS_STATE/started"
log "puppetserver starting (pid $pid, log $PS_STATE/puppetserver.log)"
wait_ready "$pid"
timing "puppetserver ready after $(( $(date +%s) - t1 ))s (pid $pid); total $(( $(date +%s) - t0 ))s"
echo "KICK_PUPPET_STACK=$PS_STATE"
