#!/usr/bin/env bash
# Benchmark of the psick-task binary (issue 2): the task's own overhead around
# a trivial fake puppet, its peak RSS, and its size.
#
# Usage: bench.sh PATH/TO/psick-task   (the static build `make task` stages)
# Env:   BENCH_RUNS (hyperfine runs per command, default 300)
#
# The fake puppet is a copy of /bin/true, so "fake puppet alone" is the cost
# of starting a process and the difference is what the task adds: reading
# input, resolving settings from puppet.conf, checking the lockfiles,
# spawning puppet in its own process group, draining its output, checking
# the summary and printing JSON.
set -euo pipefail

task=${1:?usage: bench.sh PATH/TO/psick-task}
task=$(readlink -f "$task")
runs=${BENCH_RUNS:-300}
for tool in hyperfine /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is required" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/conf" "$work/var/state" "$work/public" "$work/bin"
cp /bin/true "$work/bin/puppet"
printf '[main]\nvardir = %s/var\npublicdir = %s/public\n' "$work" "$work" > "$work/conf/puppet.conf"
export PSICK_PUPPET_BIN="$work/bin/puppet" PSICK_PUPPET_CONFDIR="$work/conf"

# Sanity: the task must succeed around the fake puppet.
"$task" < /dev/null > "$work/result.json" || { echo "bench.sh: task failed:" >&2; cat "$work/result.json" >&2; exit 1; }

hyperfine -N --warmup 20 --runs "$runs" --style basic \
  --export-csv "$work/times.csv" \
  -n "fake puppet alone" "$PSICK_PUPPET_BIN agent --onetime" \
  -n "psick-task around fake puppet" "$task" >&2

# CSV: command,mean,stddev,median,user,system,min,max (seconds)
median() { awk -F, -v n="$1" '$1 == n { printf "%.3f", $4 * 1000 }' "$work/times.csv"; }
direct=$(median "fake puppet alone")
wrapped=$(median "psick-task around fake puppet")
overhead=$(awk -v a="$wrapped" -v b="$direct" 'BEGIN { printf "%.3f", a - b }')

rss_kib=0
for _ in 1 2 3 4 5; do
  kib=$( { /usr/bin/time -f %M "$task" < /dev/null > /dev/null; } 2>&1 | tail -1)
  (( kib > rss_kib )) && rss_kib=$kib
done
rss_mib=$(awk -v k="$rss_kib" 'BEGIN { printf "%.2f", k / 1024 }')
size=$(stat -c %s "$task")
size_mib=$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "yes" : "NO" }'; }
cat <<TABLE

| measure | value | target | met |
| --- | --- | --- | --- |
| median, fake puppet alone | ${direct} ms | | |
| median, psick-task around fake puppet | ${wrapped} ms | | |
| task overhead (difference of medians) | ${overhead} ms | < 5 ms | $(verdict "$overhead" 5) |
| peak RSS of the task (max of 5 runs) | ${rss_mib} MiB | < 8 MiB | $(verdict "$rss_mib" 8) |
| binary size | ${size_mib} MiB (${size} bytes) | < 2 MiB | $(verdict "$size_mib" 2) |
TABLE

# Reading a 5,000-resource run report (the result's `changes`), beside Ruby.
"$(dirname "$0")/report.sh" "$task"
