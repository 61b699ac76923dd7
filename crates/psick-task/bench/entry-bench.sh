#!/usr/bin/env bash
# What the tasks' entry (tasks/puppet_agent, POSIX sh) adds to a run: the entry, which execs
# the node's own architecture's binary, against the binary started directly, both around the
# same trivial fake puppet (a copy of /bin/true), laid out as pxp-agent and Bolt lay out a run:
# <installdir>/psick/tasks/puppet_agent and <installdir>/psick/files/<arch>/psick-task, with
# PT__installdir set. The entry runs under Debian's /bin/sh (dash) and under bash (EL's
# /bin/sh), each as on a kernel with /proc/sys/kernel/arch and as on one without (copies of
# the entry that read a missing file instead): bash then uses its $HOSTTYPE, dash the
# multiarch directory of its C library in /proc/self/maps, a shell without either the first
# lines of /proc/cpuinfo, and only a shell on a machine whose cpuinfo says neither starts
# `uname -m`. Also prints what the second binary adds to a node's download.
#
# Usage: entry-bench.sh [PATH/TO/psick-task]   (default: files/<this arch>/psick-task)
# Env:   BENCH_RUNS  hyperfine runs per command (default 500)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
arch=$(uname -m)
task=$(readlink -f "${1:-$root/files/$arch/psick-task}")
runs=${BENCH_RUNS:-500}
command -v hyperfine >/dev/null || { echo "entry-bench.sh: hyperfine is required" >&2; exit 2; }
[ -x "$task" ] || { echo "entry-bench.sh: $task is missing: run \`make task\`" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/conf" "$work/var/state" "$work/public" "$work/bin" \
  "$work/install/psick/tasks" "$work/install/psick/files/$arch"
cp /bin/true "$work/bin/puppet"
printf '[main]\nvardir = %s/var\npublicdir = %s/public\n' "$work" "$work" > "$work/conf/puppet.conf"
install -m 0755 "$root/tasks/puppet_agent" "$work/install/psick/tasks/puppet_agent"
sed 's|/proc/sys/kernel/arch|/nonexistent/arch|' "$root/tasks/puppet_agent" > "$work/install/psick/tasks/old_kernel"
sed 's|/proc/sys/kernel/arch|/nonexistent/arch|; s|/proc/self/maps|/nonexistent/maps|' \
  "$root/tasks/puppet_agent" > "$work/install/psick/tasks/cpuinfo"
sed 's|/proc/sys/kernel/arch|/nonexistent/arch|; s|/proc/self/maps|/nonexistent/maps|; s|/proc/cpuinfo|/nonexistent/cpuinfo|' \
  "$root/tasks/puppet_agent" > "$work/install/psick/tasks/uname"
chmod 0755 "$work/install/psick/tasks/old_kernel" "$work/install/psick/tasks/cpuinfo" "$work/install/psick/tasks/uname"
install -m 0755 "$task" "$work/install/psick/files/$arch/psick-task"
export PSICK_PUPPET_BIN="$work/bin/puppet" PSICK_PUPPET_CONFDIR="$work/conf" \
  PT__installdir="$work/install"
entry=$work/install/psick/tasks/puppet_agent
old=$work/install/psick/tasks/old_kernel
cpuinfo=$work/install/psick/tasks/cpuinfo
uname=$work/install/psick/tasks/uname
binary=$work/install/psick/files/$arch/psick-task

# Sanity: the same result either way (duration aside).
strip() { sed 's/"duration":[0-9.]*//'; }
a=$("$binary" < /dev/null | strip)
for run in "$entry" "$old" "$cpuinfo" "$uname" "bash $entry" "bash $old"; do
  b=$($run < /dev/null | strip)
  [ "$a" = "$b" ] || { echo "entry-bench.sh: $run gives another result:" >&2; echo "$a" >&2; echo "$b" >&2; exit 1; }
done

hyperfine -N --warmup 30 --runs "$runs" --style basic --export-csv "$work/times.csv" \
  -n "binary" "$binary" \
  -n "sh-proc" "$entry" \
  -n "sh-maps" "$old" \
  -n "sh-cpuinfo" "$cpuinfo" \
  -n "sh-uname" "$uname" \
  -n "bash-proc" "bash $entry" \
  -n "bash-hosttype" "bash $old" >&2

# The same runs interleaved (round-robin, in a shuffled order each round), so that whatever
# else the machine does weighs on every variant alike: medians, and their differences from the
# binary's. On a shared machine these are the figures to read.
interleaved=$(python3 - "$runs" "$binary" "$entry" "$old" "$cpuinfo" "$uname" "bash $entry" "bash $old" <<'PY'
import os, random, statistics, sys, time
runs, cmds = int(sys.argv[1]), [c.split() for c in sys.argv[2:]]
null = os.open(os.devnull, os.O_RDWR)
times = [[] for _ in cmds]
for _ in range(runs):
    order = list(range(len(cmds)))
    random.shuffle(order)
    for i in order:
        t = time.perf_counter()
        pid = os.posix_spawnp(cmds[i][0], cmds[i], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)])
        os.waitpid(pid, 0)
        times[i].append(time.perf_counter() - t)
med = [statistics.median(t) * 1000 for t in times]
print(" ".join(f"{m:.3f}" for m in med))
PY
)
read -r i_bin i_sh i_maps i_cpu i_uname i_bash i_host <<< "$interleaved"

# CSV: command,mean,stddev,median,user,system,min,max (seconds)
ms() { awk -F, -v n="$1" -v c="$2" '$1 == n { printf "%.3f", $c * 1000 }' "$work/times.csv"; }
diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
verdict() { awk -v v="$1" 'BEGIN { print (v < 2) ? "yes" : "NO" }'; }
sh_name=$(basename "$(readlink -f /bin/sh)")
cpu() { awk -F, -v n="$1" '$1 == n { printf "%.3f", ($5 + $6) * 1000 }' "$work/times.csv"; }
row() { # name label
  local med min d
  med=$(ms "$1" 4) min=$(ms "$1" 7)
  d=$(diff "$med" "$(ms binary 4)")
  echo "| $2 | $med ms | $min ms | $(cpu "$1") ms | $d ms | $(diff "$min" "$(ms binary 7)") ms | $(diff "$(cpu "$1")" "$(cpu binary)") ms | $(verdict "$d") |"
}
size() { stat -c %s "$1"; }
x86=$(size "$root/files/x86_64/psick-task" 2>/dev/null || echo 0)
arm=$(size "$root/files/aarch64/psick-task" 2>/dev/null || echo 0)
ent=$(size "$root/tasks/puppet_agent")
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }
cat <<TABLE

| started as | median | min | CPU (user+sys, mean) | added: median | added: min | added: CPU | < 2 ms (median) |
| --- | --- | --- | --- | --- | --- | --- | --- |
| the binary, directly | $(ms binary 4) ms | $(ms binary 7) ms | $(cpu binary) ms | | | | |
$(row "sh-proc" "the entry, /bin/sh ($sh_name), /proc/sys/kernel/arch")
$(row "sh-maps" "the entry, /bin/sh ($sh_name), no /proc/sys/kernel/arch: /proc/self/maps")
$(row "sh-cpuinfo" "the entry, /bin/sh ($sh_name), neither: /proc/cpuinfo")
$(row "sh-uname" "the entry, /bin/sh ($sh_name), none of those: uname -m")
$(row "bash-proc" "the entry, bash, /proc/sys/kernel/arch")
$(row "bash-hosttype" "the entry, bash, no /proc/sys/kernel/arch: \$HOSTTYPE")

Interleaved ($runs rounds), medians:

| started as | median | added | < 2 ms |
| --- | --- | --- | --- |
| the binary, directly | $i_bin ms | | |
| the entry, /bin/sh, /proc/sys/kernel/arch | $i_sh ms | $(diff "$i_sh" "$i_bin") ms | $(verdict "$(diff "$i_sh" "$i_bin")") |
| the entry, /bin/sh, /proc/self/maps | $i_maps ms | $(diff "$i_maps" "$i_bin") ms | $(verdict "$(diff "$i_maps" "$i_bin")") |
| the entry, /bin/sh, /proc/cpuinfo | $i_cpu ms | $(diff "$i_cpu" "$i_bin") ms | $(verdict "$(diff "$i_cpu" "$i_bin")") |
| the entry, /bin/sh, uname -m | $i_uname ms | $(diff "$i_uname" "$i_bin") ms | $(verdict "$(diff "$i_uname" "$i_bin")") |
| the entry, bash, /proc/sys/kernel/arch | $i_bash ms | $(diff "$i_bash" "$i_bin") ms | $(verdict "$(diff "$i_bash" "$i_bin")") |
| the entry, bash, \$HOSTTYPE | $i_host ms | $(diff "$i_host" "$i_bin") ms | $(verdict "$(diff "$i_host" "$i_bin")") |

| a node's download (first run of a version) | bytes |
| --- | --- |
| entry + x86_64 + aarch64 binaries | $((ent + x86 + arm)) ($(kib $((ent + x86 + arm)))) |
| one binary alone, as before | $x86 on x86_64 ($(kib "$x86")), $arm on aarch64 ($(kib "$arm")) |
| added by shipping both | $((ent + arm)) on x86_64 nodes ($(kib $((ent + arm)))), $((ent + x86)) on aarch64 nodes ($(kib $((ent + x86)))) |
TABLE
