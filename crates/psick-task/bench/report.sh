#!/usr/bin/env bash
# Benchmark of reading the run's report (issue 10): what the `changes` cost the task on a
# 5,000-resource last_run_report.yaml, beside Ruby's own YAML loader on the same file.
#
# Usage: report.sh PATH/TO/psick-task   (the static build `make task` stages)
# Env:   BENCH_RUNS (hyperfine runs for the task, default 30; Ruby gets a third of them)
#        BENCH_REPORT (an existing report to use instead of making one)
#
# The report is a real one: `puppet apply --noop` of 5,000 file resources, all in a temp dir
# (noop: nothing is created), so every resource has a pending change, the worst case. The
# fake puppet copies it into place as puppet does at the end of a run; the same fake
# writing it elsewhere (so the task reads no report) is the baseline, and the difference of
# the medians is what reading the report adds.
set -euo pipefail

task=${1:?usage: report.sh PATH/TO/psick-task}
task=$(readlink -f "$task")
runs=${BENCH_RUNS:-30}
ruby_runs=$(( runs / 3 > 3 ? runs / 3 : 3 ))
for tool in hyperfine /usr/bin/time puppet ruby jq; do
  command -v "$tool" >/dev/null || { echo "report.sh: $tool is required" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

report=${BENCH_REPORT:-}
if [ -z "$report" ]; then
  mkdir -p "$work/apply/conf" "$work/apply/var"
  printf '[main]\nvardir = %s\npublicdir = %s/public\nlogdir = %s/log\nrundir = %s/run\nssldir = %s/ssl\n' \
    "$work/apply/var" "$work/apply/var" "$work/apply/var" "$work/apply/var" "$work/apply/var" \
    > "$work/apply/conf/puppet.conf"
  cat > "$work/apply/site.pp" <<PP
Integer[1, 5000].each |\$i| {
  file { "$work/apply/files/f\${i}.conf":
    ensure  => file,
    content => "setting_\${i} = on\n",
    mode    => '0644',
  }
}
PP
  echo "report.sh: making a 5,000-resource report with puppet apply --noop (about a minute)" >&2
  puppet apply --confdir "$work/apply/conf" --noop --color=false "$work/apply/site.pp" \
    > "$work/apply.log" 2>&1 < /dev/null \
    || { echo "report.sh: puppet apply failed:" >&2; tail -5 "$work/apply.log" >&2; exit 1; }
  report=$work/apply/var/state/last_run_report.yaml
fi
[ -s "$report" ] || { echo "report.sh: no report at $report" >&2; exit 1; }

mkdir -p "$work/node/conf" "$work/node/var/state" "$work/node/public" "$work/bin"
printf '[main]\nvardir = %s/node/var\npublicdir = %s/node/public\n' "$work" "$work" \
  > "$work/node/conf/puppet.conf"
dest=$work/node/var/state/last_run_report.yaml
for name in writes-report writes-elsewhere; do
  target=$dest
  [ "$name" = writes-elsewhere ] && target=$work/elsewhere.yaml
  printf '#!/bin/sh\ncp %q %q.tmp && mv %q.tmp %q\n' "$report" "$target" "$target" "$target" \
    > "$work/bin/$name"
  chmod +x "$work/bin/$name"
done
export PSICK_PUPPET_CONFDIR=$work/node/conf

# Sanity: with the report the result lists changes; without, it says there was none.
PSICK_PUPPET_BIN=$work/bin/writes-report "$task" < /dev/null > "$work/with.json"
PSICK_PUPPET_BIN=$work/bin/writes-elsewhere "$task" < /dev/null > "$work/without.json"
listed=$(jq '.changes | length' "$work/with.json")
truncated=$(jq '.changes_truncated // 0' "$work/with.json")
jq -e '.report_error == null and (.changes | length) == 100' "$work/with.json" > /dev/null \
  || { echo "report.sh: the task did not read the report:" >&2; jq -c '.report_error' "$work/with.json" >&2; exit 1; }
jq -e '.report_error != null' "$work/without.json" > /dev/null \
  || { echo "report.sh: the baseline read a report" >&2; exit 1; }

strip='YAML.unsafe_load(File.read(ARGV[0]).sub(/\A--- !ruby\S*/, "---"))'
hyperfine -N --warmup 3 --runs "$runs" --style basic --export-csv "$work/task.csv" \
  -n "task without report" "env PSICK_PUPPET_BIN=$work/bin/writes-elsewhere $task" \
  -n "task reading report" "env PSICK_PUPPET_BIN=$work/bin/writes-report $task" >&2
# Ruby as the issue words it: unsafe_load_file raises on the report's Ruby class tag once it
# has parsed the file, so it is timed (failures ignored) beside a full load with the tag
# stripped, and Ruby's own start-up is measured to be subtracted.
# Through the shell for the quoting; start-up includes it too, so it cancels out.
hyperfine -i --warmup 1 --runs "$ruby_runs" --style basic --export-csv "$work/ruby.csv" \
  -n "ruby start-up" "ruby -ryaml -e 0" \
  -n "ruby unsafe_load_file" "ruby -ryaml -e 'YAML.unsafe_load_file(ARGV[0])' '$report'" \
  -n "ruby full load" "ruby -ryaml -e '$strip' '$report'" >&2

median() { awk -F, -v n="$2" '$1 == n { printf "%.1f", $4 * 1000 }' "$1"; }
# Mean CPU time (user + system): steadier than wall time on a busy machine.
cpu() { awk -F, -v n="$2" '$1 == n { printf "%.1f", ($5 + $6) * 1000 }' "$1"; }
base=$(median "$work/task.csv" "task without report")
with=$(median "$work/task.csv" "task reading report")
ruby0=$(median "$work/ruby.csv" "ruby start-up")
ruby_file=$(median "$work/ruby.csv" "ruby unsafe_load_file")
ruby_full=$(median "$work/ruby.csv" "ruby full load")
added=$(awk -v a="$with" -v b="$base" 'BEGIN { printf "%.1f", a - b }')
cpu_added=$(awk -v a="$(cpu "$work/task.csv" "task reading report")" -v b="$(cpu "$work/task.csv" "task without report")" 'BEGIN { printf "%.1f", a - b }')
cpu_ruby=$(awk -v a="$(cpu "$work/ruby.csv" "ruby full load")" -v b="$(cpu "$work/ruby.csv" "ruby start-up")" 'BEGIN { printf "%.1f", a - b }')
cpu_speedup=$(awk -v r="$cpu_ruby" -v t="$cpu_added" 'BEGIN { printf "%.1f", (t > 0) ? r / t : 0 }')
load=$(cut -d' ' -f1 /proc/loadavg)
ruby_net=$(awk -v a="$ruby_full" -v b="$ruby0" 'BEGIN { printf "%.1f", a - b }')
speedup=$(awk -v r="$ruby_net" -v t="$added" 'BEGIN { printf "%.1f", (t > 0) ? r / t : 0 }')
ruby_file_net=$(awk -v a="$ruby_file" -v b="$ruby0" 'BEGIN { printf "%.1f", a - b }')
speedup_file=$(awk -v r="$ruby_file_net" -v t="$added" 'BEGIN { printf "%.1f", (t > 0) ? r / t : 0 }')

peak() {
  local max=0 kib
  for _ in 1 2 3; do
    kib=$( { /usr/bin/time -f %M "$@" < /dev/null > /dev/null; } 2>&1 | tail -1)
    (( kib > max )) && max=$kib
  done
  awk -v k="$max" 'BEGIN { printf "%.1f", k / 1024 }'
}
rss_task=$(PSICK_PUPPET_BIN=$work/bin/writes-report peak "$task")
rss_ruby=$(peak ruby -ryaml -e "$strip" "$report")
size_mib=$(awk -v s="$(stat -c %s "$report")" 'BEGIN { printf "%.1f", s / 1048576 }')

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<") ? v < t : v >= t; print ok ? "yes" : "NO" }'; }
cat <<TABLE

Report: ${size_mib} MiB, 5,000 resources with a pending change each; the result lists ${listed} changes, ${truncated} more counted in changes_truncated. Load average at the end: ${load}.

| measure | value | target | met |
| --- | --- | --- | --- |
| median, task without a report | ${base} ms | | |
| median, task reading the report | ${with} ms | | |
| time reading the report adds (difference of medians) | ${added} ms | < 100 ms | $(verdict "$added" 100 "<") |
| peak RSS of the task reading it (max of 3 runs) | ${rss_task} MiB | < 32 MiB | $(verdict "$rss_task" 32 "<") |
| median, \`ruby -ryaml -e 'YAML.unsafe_load_file(ARGV[0])'\` (raises on the class tag after parsing) | ${ruby_file} ms | | |
| median, Ruby loading it in full (tag stripped) | ${ruby_full} ms (start-up ${ruby0} ms) | | |
| peak RSS of Ruby loading it | ${rss_ruby} MiB | | |
| speed-up: Ruby's load (net of start-up) / the task's added time | ${speedup}x | >= 10x | $(verdict "$speedup" 10 ">=") |
| speed-up: \`unsafe_load_file\`'s parse alone (net of start-up) / the task's added time | ${speedup_file}x | >= 10x | $(verdict "$speedup_file" 10 ">=") |
| CPU time (user + system) reading the report adds | ${cpu_added} ms | < 100 ms | $(verdict "$cpu_added" 100 "<") |
| CPU time of Ruby's load (net of start-up) / the task's | ${cpu_ruby} ms / ${cpu_added} ms = ${cpu_speedup}x | >= 10x | $(verdict "$cpu_speedup" 10 ">=") |
TABLE
