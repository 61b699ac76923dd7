#!/usr/bin/env bash
# A fleet of real SSH nodes on loopback for the end-to-end suite and the demo.
#
# Each node is Debian's /usr/sbin/sshd running as PID 1 of its own mount, UTS and PID namespace
# (`unshare --mount --uts --pid --fork --mount-proc`, mounts private), listening on its own
# loopback address 127.0.1.N port 22. No network namespace: the nodes share the host's network
# and reach the puppetserver on 127.0.0.1:8140. Each node has its own hostname (= certname),
# /etc/puppet, /var/lib/puppet (ssldir), /var/cache/puppet (vardir), /var/log, /var/tmp,
# /var/lib/sudo, /run (a private tmpfs), /tmp, /etc/ssh (its own ed25519 host key), /etc/passwd,
# /etc/group, /etc/shadow, /etc/sudoers (+ an empty /etc/sudoers.d), /etc/hosts, /etc/hostname,
# /root and /home, all bind-mounted from $FLEET_STATE/nodes/<certname>/. The login user `kick`
# (shell /bin/sh) logs in with the fleet key or its password, and may sudo with that password
# (`kick ALL=(ALL:ALL) ALL`). root accepts the fleet key too (PermitRootLogin prohibit-password).
# Each node's puppet agent gets its certificate from the real puppetserver
# (tests/scripts/puppet-stack-up.sh) before `up` returns.
#
# Nothing of the host is modified: not /etc, not /root/.ssh. Everything lives under FLEET_STATE.
#
# Usage:
#   fleet.sh up                     start the fleet (idempotent: running nodes are reused, missing
#                                   or changed ones started; recorded nodes not in FLEET_NODES are
#                                   stopped); the last line printed is KICK_FLEET=<state dir>
#   fleet.sh down                   stop every node recorded in the state dir, by its recorded PID
#   fleet.sh status                 one line a node; exit 1 unless every node answers SSH
#   fleet.sh down-node NAME...      stop these nodes (the "sshd down" case)
#   fleet.sh up-node NAME...        start these recorded nodes again (same address, keys, certs)
#   fleet.sh rotate-host-key NAME   new host key, sshd reloaded (same PID); known_hosts untouched
#   fleet.sh restore-host-key NAME  back to the key in known_hosts
#   fleet.sh tmp-noexec NAME on|off remount the node's /tmp noexec (or exec again), live
#
# Env:
#   FLEET_STATE       state dir (default /tmp/kick-fleet)
#   FLEET_NODES       certnames, in address order (default "node1.fleet node2.fleet node3.fleet")
#   FLEET_BASE_ADDR   first node's address (default 127.0.1.1; the next ones increment the last
#                     octet; 127.0.0.0/8 only; up to 250 nodes)
#   FLEET_NOEXEC_TMP  certnames whose /tmp is a noexec tmpfs
#   FLEET_PASSWORD    the login and sudo password of `kick` (default: random, kept in the state)
#   FLEET_PUPPET=0    skip the agents' certificate bootstrap (no puppetserver needed)
#
# State ($FLEET_STATE): id_ed25519(.pub) the fleet's client key; wrong_ed25519(.pub) a key no node
# authorises; known_hosts (each node's host key under its address and its certname); fleet.json;
# password; nodes.list (this fleet's certnames in order); started (certnames the last `up`
# started, written as it starts them, so that its caller stops only those; up-node does not
# touch it); nodes/<certname>/ (the node's files; pid holds
# "<host PID of the namespace's PID 1, i.e. sshd> <its start time>"; boot.log; var/log/sshd.log).
set -euo pipefail

FLEET_STATE=${FLEET_STATE:-/tmp/kick-fleet}
FLEET_NODES=${FLEET_NODES:-node1.fleet node2.fleet node3.fleet}
FLEET_BASE_ADDR=${FLEET_BASE_ADDR:-127.0.1.1}
FLEET_NOEXEC_TMP=${FLEET_NOEXEC_TMP:-}
FLEET_PUPPET=${FLEET_PUPPET:-1}
FLEET_USER=kick
PUPPET_SERVER=localhost # in the server certificate's names (localhost, puppet)
PUPPET_PORT=8140
SERVER_CA=/etc/puppet/puppetserver/ca/ca_crt.pem
SSHD=/usr/sbin/sshd
# Bump when the node layout or the sshd_config changes: running nodes are then restarted.
LAYOUT=2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
nodes_dir="$FLEET_STATE/nodes"
clean_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)

log() { echo "[fleet] $*" >&2; }
die() { log "error: $*"; exit 1; }
timing() { mkdir -p "$FLEET_STATE"; echo "$(date -u +%FT%TZ) $*" >> "$FLEET_STATE/timings.log"; log "$*"; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Inside the namespace, as its PID 1: private mounts, hostname, then exec sshd (which stays PID 1:
# it reaps every orphan, and SIGHUP re-executes it under the same PID).
if [ "${1:-}" = __init ]; then
  d=$2
  name=$(cat "$d/name")
  bindm() { mount --bind "$d/$1" "$2"; }
  # The node's /etc: the host's, under the node's own files (passwd, group, shadow, sudoers,
  # hosts, hostname) in an overlay. A bind mount on a single file would not do: useradd,
  # userdel or a package's postinst on the host replaces /etc/passwd by a rename, which
  # detaches such a mount in every namespace, and the node's users are gone.
  rm -rf "$d/etc-work"
  mkdir -p "$d/etc-work"
  mount -t overlay fleet-etc -o "lowerdir=/etc,upperdir=$d/etc,workdir=$d/etc-work" /etc
  # The node's directories replace the host's (an overlay would merge them).
  bindm etc/puppet /etc/puppet
  bindm etc/ssh /etc/ssh
  bindm etc/sudoers.d /etc/sudoers.d
  bindm var/lib/puppet /var/lib/puppet
  bindm var/cache/puppet /var/cache/puppet
  bindm var/log /var/log
  bindm var/tmp /var/tmp
  if [ -d /var/lib/sudo ]; then bindm var/lib/sudo /var/lib/sudo; fi
  bindm root /root
  bindm home /home
  mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m fleet-run /run
  mkdir -m 0755 /run/sshd /run/puppet
  if [ "$(cat "$d/noexec_tmp")" = 1 ]; then
    mount -t tmpfs -o mode=1777,nosuid,nodev,noexec,size=512m fleet-tmp /tmp
  else
    bindm tmp /tmp # last: the sources above live under the host's /tmp
  fi
  echo "$name" > /proc/sys/kernel/hostname
  cd /
  echo "[fleet] $name: namespace ready, exec sshd"
  exec "$SSHD" -D -f /etc/ssh/sshd_config -E /var/log/sshd.log
fi

# ---------------------------------------------------------------------------------------------
# Host side.
[ "$(id -u)" = 0 ] || die "must run as root (namespaces, mounts, sshd)"
[ -x "$SSHD" ] || die "$SSHD missing: run tests/scripts/install-deps.sh (openssh-server)"

# Start time (clock ticks since boot) of a PID, to tell a recorded process from a recycled PID.
starttime() {
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  # shellcheck disable=SC2086 # word-split the fields on purpose
  set -- $rest
  echo "${20}"
}
comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }
# Alive and not a zombie (an exited process whose parent has not reaped it yet runs nothing).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# The recorded PID of node $1 if that process is still the one recorded (alive, same start time),
# else nothing.
node_pid() {
  local d="$nodes_dir/$1" pid st
  [ -s "$d/pid" ] || return 0
  read -r pid st < "$d/pid" || return 0
  [ -n "$pid" ] && [ "$(starttime "$pid" 2>/dev/null || true)" = "$st" ] && echo "$pid"
  return 0
}

# Whether addr:22 answers with an SSH banner.
ssh_banner() {
  local addr=$1 line
  line=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && IFS= read -r -t 2 l <&3 && printf %s "$l"' _ "$addr" 2>/dev/null) || return 1
  [[ $line == SSH-2.0-* ]]
}

# The address of the i-th node (0-based).
addr_of() {
  local i=$1 a b c d
  IFS=. read -r a b c d <<< "$FLEET_BASE_ADDR"
  [ "$a" = 127 ] || die "FLEET_BASE_ADDR=$FLEET_BASE_ADDR: only 127.0.0.0/8 is allowed"
  [ $((d + i)) -le 254 ] || die "FLEET_BASE_ADDR=$FLEET_BASE_ADDR leaves no address for node $((i + 1))"
  echo "$a.$b.$c.$((d + i))"
}

valid_name() {
  [[ $1 =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] && [ ${#1} -le 63 ] \
    || die "node name '$1': lower-case letters, digits, '-' and '.' only (it is a hostname and a certname)"
}

# Fleet-wide files: client keys, the password.
prepare_fleet() {
  mkdir -p "$nodes_dir"
  chmod 755 "$FLEET_STATE"
  for k in id_ed25519 wrong_ed25519; do
    if [ ! -s "$FLEET_STATE/$k" ]; then
      rm -f "$FLEET_STATE/$k" "$FLEET_STATE/$k.pub"
      ssh-keygen -q -t ed25519 -N '' -C "kick-fleet-${k%_ed25519}" -f "$FLEET_STATE/$k"
    fi
  done
  if [ -n "${FLEET_PASSWORD:-}" ]; then
    printf '%s\n' "$FLEET_PASSWORD" > "$FLEET_STATE/password"
  elif [ ! -s "$FLEET_STATE/password" ]; then
    echo "kick-$(openssl rand -hex 6)" > "$FLEET_STATE/password"
  fi
  chmod 600 "$FLEET_STATE/password"
}

# A uid free on the host, stable for the state dir (files in the nodes' homes are owned by it).
fleet_uid() {
  if [ ! -s "$FLEET_STATE/uid" ]; then
    local u=2000
    while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null; do u=$((u + 1)); done
    echo "$u" > "$FLEET_STATE/uid"
  fi
  cat "$FLEET_STATE/uid"
}

# The node's files (idempotent: keys and certificates are kept, config rewritten).
prepare_node() {
  local name=$1 addr=$2 noexec=$3 d="$nodes_dir/$1" uid pw hash
  uid=$(fleet_uid)
  pw=$(cat "$FLEET_STATE/password")
  mkdir -p "$d"/etc/{puppet,ssh,sudoers.d} "$d"/var/lib/{puppet,sudo/lectured} \
    "$d"/var/cache/puppet "$d"/var/log/puppet "$d"/var/tmp "$d"/root/.ssh "$d"/home "$d"/tmp
  chmod 1777 "$d/tmp" "$d/var/tmp"
  chmod 700 "$d/root" "$d/root/.ssh" "$d/var/lib/sudo/lectured"
  chmod 755 "$d/etc/sudoers.d"
  echo "$name" > "$d/name"
  echo "$addr" > "$d/address"
  echo "$noexec" > "$d/noexec_tmp"

  # Host key: made once, kept across restarts (a rotated key is put back: see rotate-host-key).
  local k="$d/etc/ssh/ssh_host_ed25519_key"
  if [ -s "$k.known" ]; then
    mv -f "$k.known" "$k"; mv -f "$k.known.pub" "$k.pub"
    touch "$d/reload" # a running sshd must be told (SIGHUP)
  fi
  if [ ! -s "$k" ] || [ ! -s "$k.pub" ]; then
    rm -f "$k" "$k.pub"
    ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$k"
  fi
  [ -e "$d/etc/ssh/moduli" ] || { [ ! -e /etc/ssh/moduli ] || cp /etc/ssh/moduli "$d/etc/ssh/moduli"; }
  cat > "$d/etc/ssh/sshd_config" <<CONF
# Node $name of the kick test fleet (tests/scripts/fleet.sh)
ListenAddress $addr:22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
MaxStartups 1000:30:1000
MaxSessions 100
UseDNS no
PrintMotd no
X11Forwarding no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
CONF

  # Users: the host's accounts (system users such as sshd), no password for any of them, plus
  # the login user; root's home is the node's own (empty of shell start-up files).
  grep -v "^$FLEET_USER:" /etc/passwd | awk -F: -v u="$uid" '$3 != u' > "$d/etc/passwd"
  echo "$FLEET_USER:x:$uid:$uid:Kick fleet user:/home/$FLEET_USER:/bin/sh" >> "$d/etc/passwd"
  grep -v "^$FLEET_USER:" /etc/group | awk -F: -v u="$uid" '$3 != u' > "$d/etc/group"
  echo "$FLEET_USER:x:$uid:" >> "$d/etc/group"
  hash=$(printf '%s' "$pw" | openssl passwd -6 -stdin)
  cut -d: -f1 "$d/etc/passwd" | awk -v u="$FLEET_USER" -v h="$hash" \
    '{ printf "%s:%s:20000:0:99999:7:::\n", $1, ($1 == u ? h : "*") }' > "$d/etc/shadow"
  chgrp shadow "$d/etc/shadow" 2>/dev/null || true
  chmod 640 "$d/etc/shadow"
  chmod 644 "$d/etc/passwd" "$d/etc/group"
  cat > "$d/etc/sudoers" <<CONF
# Node $name of the kick test fleet: Debian's default sudoers plus the login user.
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
$FLEET_USER	ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
CONF
  chmod 440 "$d/etc/sudoers"
  { cat /etc/hosts; echo "$addr $name ${name%%.*}"; } > "$d/etc/hosts"
  echo "$name" > "$d/etc/hostname"
  chmod 644 "$d/etc/hosts" "$d/etc/hostname"

  local home="$d/home/$FLEET_USER"
  mkdir -p "$home/.ssh"
  cp "$FLEET_STATE/id_ed25519.pub" "$home/.ssh/authorized_keys"
  cp "$FLEET_STATE/id_ed25519.pub" "$d/root/.ssh/authorized_keys"
  chmod 755 "$d/home"
  chmod 700 "$home" "$home/.ssh"
  chmod 600 "$home/.ssh/authorized_keys" "$d/root/.ssh/authorized_keys"
  chown -R "$uid:$uid" "$home"

  cat > "$d/etc/puppet/puppet.conf" <<CONF
# Node $name of the kick test fleet (tests/scripts/fleet.sh). Debian's default paths
# (vardir /var/cache/puppet, ssldir /var/lib/puppet/ssl, rundir /run/puppet) are the node's own.
[main]
certname = $name
server = $PUPPET_SERVER
serverport = $PUPPET_PORT

[agent]
# Avoids a 30 s stall after the CSR on first contact (see puppet-stack.md).
http_keepalive_timeout = 0
CONF
  echo "layout=$LAYOUT addr=$addr noexec=$noexec sshd_config=$(sha256sum < "$d/etc/ssh/sshd_config" | cut -c1-16)" > "$d/config.want"
}

# Starts node $1 (prepared) and waits until its sshd answers. Records its PID.
start_node() {
  local name=$1 d="$nodes_dir/$1" addr upid ipid t0 children
  addr=$(cat "$d/address")
  if ssh_banner "$addr"; then
    die "$addr:22 already answers SSH, and it is not node $name: is another fleet running (FLEET_STATE)?"
  fi
  rm -f "$d/pid" "$d/unshare.pid" "$d/reload"
  t0=$(now_ms)
  setsid unshare --mount --uts --pid --fork --mount-proc --propagation private --kill-child \
    "${clean_env[@]}" bash "$self" __init "$d" >> "$d/boot.log" 2>&1 < /dev/null &
  upid=$!
  # The namespace's PID 1 is unshare's only child.
  ipid=
  for _ in $(seq 1 200); do
    children=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null || true)
    ipid=${children%% *}
    [ -n "$ipid" ] && break
    alive "$upid" || break
    sleep 0.05
  done
  [ "$(comm_of "$upid")" = unshare ] || { tail -20 "$d/boot.log" >&2; die "$name: unshare did not start (pid $upid is '$(comm_of "$upid")')"; }
  [ -n "$ipid" ] || { tail -20 "$d/boot.log" >&2; die "$name: no namespace init under unshare $upid"; }
  echo "$ipid $(starttime "$ipid")" > "$d/pid"
  echo "$upid $(starttime "$upid")" > "$d/unshare.pid"
  cp "$d/config.want" "$d/config"
  for _ in $(seq 1 300); do
    if ssh_banner "$addr"; then
      log "$name: sshd pid $ipid on $addr:22 in $(( $(now_ms) - t0 )) ms"
      return 0
    fi
    if ! alive "$ipid"; then break; fi
    sleep 0.1
  done
  log "$name: sshd did not answer on $addr:22; boot.log and sshd.log:"
  tail -20 "$d/boot.log" >&2 || true
  tail -20 "$d/var/log/sshd.log" >&2 2>/dev/null || true
  stop_node "$name"
  return 1
}

# Stops node $1 by its recorded PID (SIGTERM, then SIGKILL): ending the namespace's PID 1 ends
# every process in it. Also its unshare parent, if recorded and still the same process.
stop_node() {
  local name=$1 d="$nodes_dir/$1" pid upid ust
  pid=$(node_pid "$name")
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    log "$name: stopped (pid $pid)"
  fi
  if [ -s "$d/unshare.pid" ]; then
    read -r upid ust < "$d/unshare.pid" || true
    if [ -n "${upid:-}" ] && [ "$(starttime "$upid" 2>/dev/null || true)" = "$ust" ]; then
      # --kill-child: its child gets SIGKILL when unshare goes. Normally unshare has exited already.
      for _ in $(seq 1 40); do alive "$upid" || break; sleep 0.05; done
      if alive "$upid"; then kill -TERM "$upid" 2>/dev/null || true; fi
    fi
  fi
  rm -f "$d/pid" "$d/unshare.pid" "$d/config"
}

# Runs a command inside node $1's namespaces (mount, UTS, PID), as root, with a clean environment.
in_node() {
  local name=$1 pid
  shift
  pid=$(node_pid "$name")
  [ -n "$pid" ] || die "$name is not running"
  nsenter -t "$pid" -m -u -p --wd=/ -- "${clean_env[@]}" "$@"
}

# Gets node $1's agent a signed certificate from the puppetserver, unless it has one from the
# server's current CA.
bootstrap_node() {
  local name=$1 d="$nodes_dir/$1" ssl t0 out
  ssl="$d/var/lib/puppet/ssl"
  if [ -s "$ssl/certs/$name.pem" ]; then
    if [ ! -r "$SERVER_CA" ] || cmp -s "$ssl/certs/ca.pem" "$SERVER_CA"; then return 0; fi
    log "$name: its certificate is from another CA (the stack was re-created); new certificate"
    rm -rf "$ssl"
  fi
  t0=$(now_ms)
  if ! out=$(in_node "$name" timeout 180 puppet ssl bootstrap --color=false --waitforcert 0 2>&1) \
    || [ ! -s "$ssl/certs/$name.pem" ]; then
    log "$name: puppet ssl bootstrap failed:"
    echo "$out" | tail -20 >&2
    return 1
  fi
  log "$name: agent certificate in $(( $(now_ms) - t0 )) ms"
}

puppetserver_running() {
  [ "$(curl -sk --max-time 3 "https://127.0.0.1:$PUPPET_PORT/status/v1/simple" 2>/dev/null || true)" = running ]
}

# The node's known host key line (a key rotated by rotate-host-key is not the known one).
known_key() {
  local k="$nodes_dir/$1/etc/ssh/ssh_host_ed25519_key"
  if [ -s "$k.known.pub" ]; then cut -d' ' -f1,2 "$k.known.pub"; else cut -d' ' -f1,2 "$k.pub"; fi
}

# known_hosts and fleet.json for the nodes in nodes.list.
write_outputs() {
  local name d addr pid pw uid kh="$FLEET_STATE/known_hosts" tmp
  pw=$(cat "$FLEET_STATE/password")
  tmp=$(mktemp "$FLEET_STATE/.known_hosts.XXXXXX")
  while read -r name; do
    d="$nodes_dir/$name"
    addr=$(cat "$d/address")
    echo "$addr,$name $(known_key "$name")" >> "$tmp"
  done < "$FLEET_STATE/nodes.list"
  chmod 644 "$tmp"
  mv -f "$tmp" "$kh"
  tmp=$(mktemp "$FLEET_STATE/.fleet.json.XXXXXX")
  while read -r name; do
    d="$nodes_dir/$name"
    pid=$(node_pid "$name")
    jq -n --arg certname "$name" --arg address "$(cat "$d/address")" --arg user "$FLEET_USER" \
      --arg private_key "$FLEET_STATE/id_ed25519" --arg wrong_key "$FLEET_STATE/wrong_ed25519" \
      --arg password "$pw" --arg host_key "$(known_key "$name")" \
      --arg root "$d" --argjson pid "${pid:-null}" --argjson noexec "$(cat "$d/noexec_tmp")" \
      '{certname: $certname, address: $address, port: 22, user: $user,
        private_key: $private_key, wrong_key: $wrong_key, sudo_password: $password,
        password: $password, host_key: $host_key, root: $root, pid: $pid,
        noexec_tmp: ($noexec == 1)}'
  done < "$FLEET_STATE/nodes.list" \
    | jq -s --arg kh "$kh" --arg state "$FLEET_STATE" --arg key "$FLEET_STATE/id_ed25519" \
      --arg wrong "$FLEET_STATE/wrong_ed25519" --arg user "$FLEET_USER" \
      '{state_dir: $state, known_hosts: $kh, user: $user, private_key: $key, wrong_key: $wrong,
        nodes: .}' > "$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$FLEET_STATE/fleet.json"
}

recorded_nodes() {
  local d
  for d in "$nodes_dir"/*/; do [ -e "$d/name" ] && cat "$d/name"; done
  return 0
}

node_dir_must_exist() {
  [ -s "$nodes_dir/$1/address" ] || die "no node $1 in $FLEET_STATE (run fleet.sh up with it in FLEET_NODES)"
}

# Waits until node $1 serves the host key in file $2 (after a SIGHUP).
wait_host_key() {
  local name=$1 want addr got
  want=$(cut -d' ' -f2 "$2")
  addr=$(cat "$nodes_dir/$name/address")
  for _ in $(seq 1 100); do
    got=$(ssh-keyscan -T 2 -t ed25519 "$addr" 2>/dev/null | awk '{print $3}' || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  die "$name: sshd does not serve the expected host key after SIGHUP"
}

# Prepares node $1 (address $2, noexec /tmp $3) and starts it unless it already runs with the
# same configuration. Exit status 0: started; 3: reused; anything else: failed.
up_one() {
  local name=$1 addr=$2 noexec=$3 pid d="$nodes_dir/$1"
  prepare_node "$name" "$addr" "$noexec"
  pid=$(node_pid "$name")
  if [ -n "$pid" ] && cmp -s "$d/config" "$d/config.want"; then
    # Reused; a key left rotated by a test was put back by prepare_node: reload it.
    if [ -e "$d/reload" ]; then
      kill -HUP "$pid"
      rm -f "$d/reload"
      wait_host_key "$name" "$d/etc/ssh/ssh_host_ed25519_key.pub"
    fi
    return 3
  fi
  [ -z "$pid" ] || { log "$name: configuration changed; restarting"; stop_node "$name"; }
  # Listed before it starts, so that a caller interrupted meanwhile still stops it.
  echo "$name" >> "$FLEET_STATE/started"
  start_node "$name"
}

cmd_up() {
  local t0 names=() name i addr noexec pid started=0 reused=0 failed=0
  t0=$(now_ms)
  # shellcheck disable=SC2206 # the list is space-separated names
  names=($FLEET_NODES)
  [ ${#names[@]} -ge 1 ] || die "FLEET_NODES is empty"
  [ ${#names[@]} -le 250 ] || die "at most 250 nodes (FLEET_NODES has ${#names[@]})"
  for name in "${names[@]}"; do valid_name "$name"; done
  [ "$(printf '%s\n' "${names[@]}" | sort | uniq -d)" = "" ] || die "FLEET_NODES names a node twice"
  if [ "$FLEET_PUPPET" = 1 ] && ! puppetserver_running; then
    die "no puppetserver answers on 127.0.0.1:$PUPPET_PORT: start it with tests/scripts/puppet-stack-up.sh (or FLEET_PUPPET=0)"
  fi
  prepare_fleet
  : > "$FLEET_STATE/started"
  # Recorded nodes that are not in this fleet: stopped (they may hold the addresses).
  while read -r name; do
    [ -n "$name" ] || continue
    if ! printf '%s\n' "${names[@]}" | grep -qxF "$name" && [ -n "$(node_pid "$name")" ]; then
      log "$name: not in FLEET_NODES; stopping it"
      stop_node "$name"
    fi
  done < <(recorded_nodes)
  printf '%s\n' "${names[@]}" > "$FLEET_STATE/nodes.list"
  fleet_uid > /dev/null # made once, before the parallel jobs read it
  # Prepared and started in parallel, at most 8 at a time.
  local jobs=()
  reap() {
    local rc=0
    wait "$1" || rc=$?
    case $rc in 0) started=$((started + 1)) ;; 3) reused=$((reused + 1)) ;; *) failed=$((failed + 1)) ;; esac
  }
  i=0
  for name in "${names[@]}"; do
    addr=$(addr_of "$i")
    noexec=0
    # shellcheck disable=SC2086 # the list is space-separated names
    if printf '%s\n' $FLEET_NOEXEC_TMP | grep -qxF "$name"; then noexec=1; fi
    up_one "$name" "$addr" "$noexec" &
    jobs+=($!)
    if [ ${#jobs[@]} -ge 8 ]; then reap "${jobs[0]}"; jobs=("${jobs[@]:1}"); fi
    i=$((i + 1))
  done
  for pid in "${jobs[@]}"; do reap "$pid"; done
  [ "$failed" = 0 ] || die "$failed node(s) did not start"
  if [ "$FLEET_PUPPET" = 1 ]; then
    local tb pids=() rcs=0
    tb=$(now_ms)
    # In parallel, at most 8 at a time.
    for name in "${names[@]}"; do
      bootstrap_node "$name" &
      pids+=($!)
      if [ ${#pids[@]} -ge 8 ]; then wait "${pids[0]}" || rcs=$((rcs + 1)); pids=("${pids[@]:1}"); fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || rcs=$((rcs + 1)); done
    [ "$rcs" = 0 ] || die "$rcs node(s) got no agent certificate"
    log "agent certificates ready in $(( $(now_ms) - tb )) ms"
  fi
  write_outputs
  timing "fleet up: ${#names[@]} nodes ($started started, $reused reused) in $(( $(now_ms) - t0 )) ms; $FLEET_STATE/fleet.json"
  echo "KICK_FLEET=$FLEET_STATE"
}

cmd_down() {
  local name n=0
  while read -r name; do
    [ -n "$name" ] || continue
    if [ -n "$(node_pid "$name")" ]; then n=$((n + 1)); fi
    stop_node "$name"
  done < <(recorded_nodes)
  rm -f "$FLEET_STATE/started"
  [ ! -d "$FLEET_STATE" ] || timing "fleet down: $n node(s) stopped"
}

cmd_status() {
  local name d pid addr bad=0 cert
  [ -s "$FLEET_STATE/nodes.list" ] || { log "no fleet in $FLEET_STATE"; return 1; }
  while read -r name; do
    d="$nodes_dir/$name"
    if [ ! -s "$d/address" ]; then
      printf '%-24s never started\n' "$name"; bad=1; continue
    fi
    addr=$(cat "$d/address")
    pid=$(node_pid "$name")
    cert=no
    [ ! -s "$d/var/lib/puppet/ssl/certs/$name.pem" ] || cert=yes
    if [ -n "$pid" ] && ssh_banner "$addr"; then
      printf '%-24s %-15s pid %-8s up    cert %s\n' "$name" "$addr" "$pid" "$cert"
    else
      printf '%-24s %-15s pid %-8s DOWN  cert %s\n' "$name" "$addr" "${pid:--}" "$cert"
      bad=1
    fi
  done < "$FLEET_STATE/nodes.list"
  return "$bad"
}

# rotate: a new host key for node $2, sshd reloaded (SIGHUP: same PID); the known key is kept
# aside. restore: the known key back. known_hosts and fleet.json are never touched.
host_key_cmd() {
  local what=$1 name pid k
  [ $# -eq 2 ] || die "usage: fleet.sh $what-host-key NAME"
  name=$2
  node_dir_must_exist "$name"
  pid=$(node_pid "$name")
  [ -n "$pid" ] || die "$name is not running"
  k="$nodes_dir/$name/etc/ssh/ssh_host_ed25519_key"
  if [ "$what" = rotate ]; then
    if [ ! -s "$k.known" ]; then mv -f "$k" "$k.known"; mv -f "$k.pub" "$k.known.pub"; fi
    rm -f "$k" "$k.pub"
    ssh-keygen -q -t ed25519 -N '' -C "root@$name (rotated)" -f "$k"
  else
    [ -s "$k.known" ] || { log "$name: host key not rotated; nothing to restore"; return 0; }
    mv -f "$k.known" "$k"; mv -f "$k.known.pub" "$k.pub"
  fi
  kill -HUP "$pid"
  wait_host_key "$name" "$k.pub"
  log "$name: host key now ...$(cut -d' ' -f2 "$k.pub" | tail -c 13) (known_hosts unchanged)"
}

sub=${1:-}
[ $# -eq 0 ] || shift
case $sub in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  down-node)
    [ $# -ge 1 ] || die "usage: fleet.sh down-node NAME..."
    for name in "$@"; do node_dir_must_exist "$name"; stop_node "$name"; done
    ;;
  up-node)
    [ $# -ge 1 ] || die "usage: fleet.sh up-node NAME..."
    for name in "$@"; do
      node_dir_must_exist "$name"
      if [ -z "$(node_pid "$name")" ]; then start_node "$name"; fi
    done
    if [ "$FLEET_PUPPET" = 1 ] && puppetserver_running; then
      for name in "$@"; do bootstrap_node "$name"; done
    fi
    write_outputs
    ;;
  rotate-host-key) host_key_cmd rotate "$@" ;;
  restore-host-key) host_key_cmd restore "$@" ;;
  tmp-noexec)
    [ $# -eq 2 ] || die "usage: fleet.sh tmp-noexec NAME on|off"
    case $2 in on) opt=noexec ;; off) opt=exec ;; *) die "tmp-noexec: on or off, not '$2'" ;; esac
    in_node "$1" mount -o "remount,bind,$opt" /tmp
    ;;
  ''|-h|--help|help) sed -n '2,/^[^#]/{/^#/p}' "$self" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown subcommand '$sub' (up, down, status, down-node, up-node, rotate-host-key, restore-host-key, tmp-noexec)" ;;
esac
