#!/usr/bin/env bash
# Create (or reuse) a simulated Puppet node for the loopback stack, the shell twin of
# kick_e2e::SimNode: its own certname, confdir, vardir, publicdir, ssldir, rundir and logdir
# under ROOT, talking to https://localhost:8140. With --bootstrap it also gets its
# certificate signed (autosign). Prints the environment a task needs, one VAR=value a line:
#   PSICK_PUPPET_CONFDIR=ROOT/etc
#   PSICK_PUPPET_BIN=/usr/bin/puppet
# Usage: sim-node.sh [--bootstrap] CERTNAME ROOT
# A certname is accepted only once by the CA, so keep ROOT (and its ssldir) for a given
# certname, or use a new certname.
set -euo pipefail
bootstrap=0
if [ "${1:-}" = --bootstrap ]; then bootstrap=1; shift; fi
[ $# -eq 2 ] || { echo "usage: $0 [--bootstrap] CERTNAME ROOT" >&2; exit 2; }
certname=$1 root=$2
case $certname in
  ''|*[!a-z0-9.-]*) echo "certname must be lower-case letters, digits, '-' and '.'" >&2; exit 2 ;;
esac
mkdir -p "$root"/{etc,var,ssl,run,log}
root=$(cd "$root" && pwd)
cat > "$root/etc/puppet.conf" <<CONF
# simulated node $certname (kick)
[main]
certname = $certname
server = localhost
serverport = 8140
vardir = $root/var
# Debian (and AIO) Puppet put publicdir, hence lastrunfile, outside vardir;
# each simulated node needs its own last_run_summary.yaml.
publicdir = $root/var/public
ssldir = $root/ssl
rundir = $root/run
logdir = $root/log

[agent]
# Avoids a 30 s stall after the CSR on first contact (see puppet-stack.md).
http_keepalive_timeout = 0
CONF
if [ "$bootstrap" = 1 ] && [ ! -s "$root/ssl/certs/$certname.pem" ]; then
  puppet ssl bootstrap --confdir "$root/etc" --color=false >/dev/null < /dev/null
fi
echo "PSICK_PUPPET_CONFDIR=$root/etc"
echo "PSICK_PUPPET_BIN=/usr/bin/puppet"
