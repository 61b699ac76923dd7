#!/usr/bin/env bash
# The SSH benchmark's fleet: N SSH "nodes" on N distinct loopback addresses, served by a few
# sshds (Debian's /usr/sbin/sshd), so that a client cannot multiplex two nodes over one connection.
#
# Addresses: 127.0.3.1 ... 127.0.3.254, then 127.0.4.1 ... (254 a /24; never 127.0.1.x or
# 127.0.2.x, which the test fleet uses). OpenSSH takes at most 16 ListenAddress per sshd, so
# node i is served by sshd i/16 (1,000 nodes: 63 sshds). Each sshd has its own ed25519 host key,
# `MaxStartups 1000:30:1000`, `MaxSessions 100`, `UsePAM no`, public-key login only, and runs in
# its own mount namespace (`unshare --mount --fork`, mounts private) in which an empty directory
# holding only .ssh/authorized_keys is bind-mounted over /root and a tmpfs over /run (for
# /run/sshd): root's login shell reads nothing of the host's /root (its .bashrc, .profile...).
# The login is root with the fleet's ed25519 key; known_hosts lists every address with its
# sshd's host key. The open-file limit is raised to the hard limit for the sshds.
#
# The sshds share the host's /tmp, so each node gets a tmpdir of its own, tmp/<address> under the
# state dir (mode 1777): Kick's task cache (<tmpdir>/kick-cache-<uid>) is then per node, as on
# real machines, and a first job uploads the task to every node.
#
# Nothing of the host is modified; everything lives under the state dir, removed by `down`.
#
# Usage:
#   ssh-fleet.sh up N        start N nodes (default 1000); replaces a fleet already recorded
#   ssh-fleet.sh down        stop every recorded sshd by its PID (and any session process left in
#                            its namespace), remove the state dir
#   ssh-fleet.sh status      one line per sshd; exit 1 unless each is alive
#
# Env: BENCH_FLEET_STATE (default /tmp/kick-bench-fleet).
#
# State: id_ed25519(.pub) the client key; known_hosts; addresses (one a line, in order);
# tmp/<address>/ each node's tmpdir;
# root/ (the /root every node sees); sshd/NN/ (sshd_config, host key, sshd.log, pid holding
# "<sshd PID> <start time> <mount namespace>", unshare.pid).
set -euo pipefail

STATE=${BENCH_FLEET_STATE:-/tmp/kick-bench-fleet}
SSHD=/usr/sbin/sshd
PER_SSHD=16
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

log() { echo "[bench-fleet] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Inside the mount namespace: /root and /run replaced, then exec sshd (it keeps this PID).
if [ "${1:-}" = __init ]; then
  d=$2
  mount --bind "$STATE/root" /root
  mount -t tmpfs -o mode=0755,nosuid,nodev,size=1m bench-run /run
  mkdir -m 0755 /run/sshd
  cd /
  exec "$SSHD" -D -f "$d/sshd_config" -E "$d/sshd.log"
fi

[ "$(id -u)" = 0 ] || die "must run as root (namespaces, mounts, sshd on port 22)"
[ -x "$SSHD" ] || die "$SSHD missing: run tests/scripts/install-deps.sh (openssh-server)"

starttime() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  # shellcheck disable=SC2086 # the fields, word-split on purpose
  set -- $rest
  echo "${20}"
}
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# Address of node i (0-based).
addr_of() { echo "127.0.$((3 + $1 / 254)).$((1 + $1 % 254))"; }

# The recorded sshd of dir $1, if it is still that process: "PID MNTNS".
recorded() {
  local pid st ns
  [ -s "$1/pid" ] || return 0
  read -r pid st ns < "$1/pid" || return 0
  if [ -n "$pid" ] && [ "$(starttime "$pid" 2>/dev/null || true)" = "$st" ]; then echo "$pid $ns"; fi
  return 0
}

stop_one() {
  local d=$1 pid ns rec p upid ust
  rec=$(recorded "$d")
  if [ -n "$rec" ]; then
    read -r pid ns <<< "$rec"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.02; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    # Session processes still open in that namespace (none after a clean run).
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      if [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then kill -KILL "$p" 2>/dev/null || true; fi
    done
  fi
  if [ -s "$d/unshare.pid" ]; then
    read -r upid ust < "$d/unshare.pid" || true
    if [ -n "${upid:-}" ] && [ "$(starttime "$upid" 2>/dev/null || true)" = "$ust" ]; then
      for _ in $(seq 1 50); do alive "$upid" || break; sleep 0.02; done
      if alive "$upid"; then kill -TERM "$upid" 2>/dev/null || true; fi
    fi
  fi
  rm -f "$d/pid" "$d/unshare.pid"
  return 0
}

down() {
  local d n=0
  [ -d "$STATE" ] || { log "nothing recorded in $STATE"; return 0; }
  for d in "$STATE"/sshd/*/; do
    [ -d "$d" ] || continue
    stop_one "${d%/}"
    n=$((n + 1))
  done
  rm -rf "$STATE"
  log "stopped $n sshds, removed $STATE"
}

up() {
  local n=${1:-1000} groups g i d addr upid pid t0 rec
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 50000 ] || die "N must be 1 to 50000, got '$n'"
  [ ! -d "$STATE" ] || down
  t0=$(date +%s%3N)
  # Every sshd gets the hard limit (each keeps a socket and a pipe per connection in start-up).
  ulimit -n "$(ulimit -Hn)"
  mkdir -p "$STATE/sshd" "$STATE/root/.ssh" "$STATE/tmp"
  chmod 755 "$STATE"
  chmod 700 "$STATE/root" "$STATE/root/.ssh"
  ssh-keygen -q -t ed25519 -N '' -C kick-bench -f "$STATE/id_ed25519"
  install -m 600 "$STATE/id_ed25519.pub" "$STATE/root/.ssh/authorized_keys"
  : > "$STATE/known_hosts"
  : > "$STATE/addresses"
  groups=$(( (n + PER_SSHD - 1) / PER_SSHD ))
  for ((g = 0; g < groups; g++)); do
    d=$(printf '%s/sshd/%02d' "$STATE" "$g")
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C "kick-bench-sshd-$g" -f "$d/ssh_host_ed25519_key"
    {
      echo "# kick SSH benchmark sshd $g ($self)"
      echo "Port 22"
      for ((i = g * PER_SSHD; i < n && i < (g + 1) * PER_SSHD; i++)); do
        addr=$(addr_of "$i")
        echo "ListenAddress $addr"
        echo "$addr" >> "$STATE/addresses"
        mkdir -m 1777 "$STATE/tmp/$addr"
        echo "$addr $(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")" >> "$STATE/known_hosts"
      done
      cat <<CONF
HostKey $d/ssh_host_ed25519_key
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
MaxStartups 1000:30:1000
MaxSessions 100
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel ERROR
CONF
    } > "$d/sshd_config"
    "$SSHD" -t -f "$d/sshd_config" || die "sshd $g: config rejected"
  done
  for ((g = 0; g < groups; g++)); do
    d=$(printf '%s/sshd/%02d' "$STATE" "$g")
    setsid unshare --mount --fork --propagation private --kill-child \
      env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      BENCH_FLEET_STATE="$STATE" bash "$self" __init "$d" > "$d/boot.log" 2>&1 < /dev/null &
    upid=$!
    echo "$upid $(starttime "$upid")" > "$d/unshare.pid"
  done
  # Record each sshd (unshare's only child) once it has exec'd.
  for ((g = 0; g < groups; g++)); do
    d=$(printf '%s/sshd/%02d' "$STATE" "$g")
    read -r upid _ < "$d/unshare.pid"
    pid=
    for _ in $(seq 1 200); do
      pid=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null || true)
      pid=${pid%% *}
      [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && break
      pid=
      sleep 0.02
    done
    [ -n "$pid" ] || { cat "$d/boot.log" >&2; down; die "sshd $g did not start"; }
    echo "$pid $(starttime "$pid") $(readlink "/proc/$pid/ns/mnt")" > "$d/pid"
  done
  # Every address listens (read from /proc/net/tcp: a connection would cost each sshd a fork
  # and exec), and each sshd answers with its own host key (ssh-keyscan of its first address).
  local listening=0
  for _ in $(seq 1 100); do
    listening=$(python3 - "$STATE/addresses" <<'PY'
import socket, struct, sys
want = {l.strip() for l in open(sys.argv[1]) if l.strip()}
seen = set()
for line in open("/proc/net/tcp").readlines()[1:]:
    f = line.split()
    addr, port = f[1].split(":")
    if f[3] == "0A" and int(port, 16) == 22:
        seen.add(socket.inet_ntoa(struct.pack("<I", int(addr, 16))))
print(len(want & seen))
PY
)
    [ "$listening" -ge "$n" ] && break
    sleep 0.1
  done
  [ "$listening" -ge "$n" ] || { down; die "only $listening of $n addresses listen on port 22"; }
  awk 'NR % '"$PER_SSHD"' == 1' "$STATE/addresses" > "$STATE/first-addresses"
  if [ "$(ssh-keyscan -T 10 -t ed25519 -f "$STATE/first-addresses" 2>/dev/null | cut -d' ' -f1-3 | sort)" \
      != "$(awk 'NR == FNR { a[$1] = 1; next } $1 in a' "$STATE/first-addresses" "$STATE/known_hosts" | sort)" ]; then
    down
    die "an sshd did not answer with its host key"
  fi
  # The login works, root's shell is plain: a login runs nothing of the host's /root.
  addr=$(addr_of $((n > 17 ? 16 : n - 1)))
  rec=$(ssh -o BatchMode=yes -o ControlMaster=no -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$STATE/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -i "$STATE/id_ed25519" "root@$addr" 'echo "$HOME $(ls -A /root | tr "\n" " ")"') \
    || { down; die "ssh root@$addr true failed"; }
  [ "$rec" = "/root .ssh " ] || { down; die "root@$addr sees an unexpected /root: '$rec'"; }
  echo "$n" > "$STATE/nodes"
  log "$n nodes on $groups sshds ($(head -n1 "$STATE/addresses") ... $(tail -n1 "$STATE/addresses")) in $(( $(date +%s%3N) - t0 )) ms; ssh root@$addr works"
  echo "BENCH_FLEET=$STATE"
}

status() {
  local d rec bad=0
  for d in "$STATE"/sshd/*/; do
    [ -d "$d" ] || continue
    rec=$(recorded "${d%/}")
    if [ -n "$rec" ]; then echo "$(basename "$d") sshd pid ${rec%% *}"; else echo "$(basename "$d") down"; bad=1; fi
  done
  return $bad
}

case ${1:-} in
  up) up "${2:-1000}" ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
