#!/usr/bin/env bash
# What the tasks' entry (tasks/puppet_agent, POSIX sh) adds to a run: the entry, which execs
# the node's own architecture's binary, against the binary started directly, both around the
# same trivial fake puppet (a copy of /bin/true), laid out as pxp-agent and Bolt lay out a run:
# <installdir>/psick/tasks/puppet_agent and <installdir>/psick/files/<arch>/psick-task, with
# PT__installdir set. The entry runs under Debian's /bin/sh (dash) and under bash, which is
# /bin/sh on EL. Also prints what the second binary adds to a node's download.
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
install -m 0755 "$task" "$work/install/psick/files/$arch/psick-task"
export PSICK_PUPPET_BIN="$work/bin/puppet" PSICK_PUPPET_CONFDIR="$work/conf" \
  PT__installdir="$work/install"
entry=$work/install/psick/tasks/puppet_agent
binary=$work/install/psick/files/$arch/psick-task

# Sanity: the same result either way (duration aside).
strip() { sed 's/"duration":[0-9.]*//'; }
a=$("$binary" < /dev/null | strip)
b=$("$entry" < /dev/null | strip)
[ "$a" = "$b" ] || { echo "entry-bench.sh: the entry's result differs:" >&2; echo "$a" >&2; echo "$b" >&2; exit 1; }

hyperfine -N --warmup 30 --runs "$runs" --style basic --export-csv "$work/times.csv" \
  -n "binary" "$binary" \
  -n "entry (/bin/sh)" "$entry" \
  -n "entry (bash)" "bash $entry" >&2

# CSV: command,mean,stddev,median,user,system,min,max (seconds)
median() { awk -F, -v n="$1" '$1 == n { printf "%.3f", $4 * 1000 }' "$work/times.csv"; }
direct=$(median "binary")
dash=$(median "entry (/bin/sh)")
bash_=$(median "entry (bash)")
diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
verdict() { awk -v v="$1" 'BEGIN { print (v < 2) ? "yes" : "NO" }'; }
size() { stat -c %s "$1"; }
x86=$(size "$root/files/x86_64/psick-task" 2>/dev/null || echo 0)
arm=$(size "$root/files/aarch64/psick-task" 2>/dev/null || echo 0)
ent=$(size "$root/tasks/puppet_agent")
kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }
cat <<TABLE

| measure | value | target | met |
| --- | --- | --- | --- |
| median, binary started directly | ${direct} ms | | |
| median, through the entry (/bin/sh = $(readlink -f /bin/sh)) | ${dash} ms | | |
| median, through the entry (bash) | ${bash_} ms | | |
| entry overhead, /bin/sh (difference of medians) | $(diff "$dash" "$direct") ms | < 2 ms | $(verdict "$(diff "$dash" "$direct")") |
| entry overhead, bash | $(diff "$bash_" "$direct") ms | < 2 ms | $(verdict "$(diff "$bash_" "$direct")") |
| a node's download: entry + x86_64 + aarch64 | $(kib $((ent + x86 + arm))) ($((ent + x86 + arm)) bytes) | | |
| added by shipping both (entry + the other binary) | $(kib $((ent + arm))) on x86_64 nodes, $(kib $((ent + x86))) on aarch64 nodes | | |
TABLE
