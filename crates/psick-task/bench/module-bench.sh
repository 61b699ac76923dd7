#!/usr/bin/env bash
# Start-up cost of the binary as pxp-agent's external module against the Ruby
# pxp-module-puppet it replaces: `metadata`, and a blocking `run` around the
# same trivial fake puppet (it answers --configprint and writes a report), so
# the difference is the modules' own cost, Ruby loading Puppet included.
#
# Usage: module-bench.sh PATH/TO/psick-task
# Env:   PXP_MODULE_PUPPET  the Ruby module to compare with (default: the
#                           installed /opt/puppetlabs/pxp-agent/modules/pxp-module-puppet)
#        MODULE_RUBY        the Ruby to run it with (default: its shebang's
#                           /opt/puppetlabs/puppet/bin/ruby, else `ruby`, which
#                           on Debian loads Debian's puppet)
#        BENCH_RUNS         hyperfine runs per command (default 20)
# Without pxp-module-puppet the comparison is skipped with a note: this
# repository does not ship pxp-agent's code.
set -euo pipefail

task=${1:?usage: module-bench.sh PATH/TO/psick-task}
task=$(readlink -f "$task")
runs=${BENCH_RUNS:-20}
command -v hyperfine >/dev/null || { echo "module-bench.sh: hyperfine is required" >&2; exit 2; }

ruby_module=${PXP_MODULE_PUPPET:-/opt/puppetlabs/pxp-agent/modules/pxp-module-puppet}
if [[ ! -f $ruby_module ]]; then
  echo "module-bench.sh: no pxp-module-puppet at $ruby_module (set PXP_MODULE_PUPPET to a copy of" \
       "puppetlabs/pxp-agent modules/pxp-module-puppet); comparison skipped" >&2
  exit 0
fi
ruby=${MODULE_RUBY:-}
if [[ -z $ruby ]]; then
  if [[ -x /opt/puppetlabs/puppet/bin/ruby ]]; then ruby=/opt/puppetlabs/puppet/bin/ruby; else ruby=$(command -v ruby); fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/conf" "$work/var/state" "$work/public" "$work/bin"
printf '[main]\nvardir = %s/var\npublicdir = %s/public\n' "$work" "$work" > "$work/conf/puppet.conf"
report="$work/var/state/last_run_report.yaml"
cat > "$work/report.yaml" <<'YAML'
--- !ruby/object:Puppet::Transaction::Report
time: '2026-12-01T09:20:11.348751402+00:00'
transaction_uuid: 5a5c2a0e-7d0b-4a3c-9c55-2f1e0d7c6b11
status: unchanged
environment: production
metrics:
  resources: !ruby/object:Puppet::Util::Metric
    name: resources
    label: Resources
    values:
    - - total
      - Total
      - 9
YAML
cat > "$work/bin/puppet" <<SH
#!/bin/sh
case "\$*" in
  *--configprint*)
    echo "lastrunreport = $report"
    echo "agent_disabled_lockfile = $work/var/state/agent_disabled.lock"
    echo "agent_catalog_run_lockfile = $work/var/state/agent_catalog_run.lock" ;;
  *) cp "$work/report.yaml" "$report.tmp" && mv "$report.tmp" "$report" ;;
esac
SH
chmod 0755 "$work/bin/puppet"
export PSICK_PUPPET_BIN="$work/bin/puppet" PSICK_PUPPET_CONFDIR="$work/conf"
printf '{"input":{"flags":[],"env":[]},"configuration":{"puppet_bin":"%s"}}' "$work/bin/puppet" > "$work/request.json"

# Sanity: both modules must answer the run with status unchanged.
for m in "$task" "$ruby $ruby_module"; do
  out=$($m run < "$work/request.json" || true)
  [[ $out == *'"status":"unchanged"'* ]] || { echo "module-bench.sh: $m run answered: $out" >&2; exit 1; }
done

# stdin comes through `sh -c` for both, so that cost cancels out in the difference.
hyperfine -N --warmup 2 --runs "$runs" --style basic --export-csv "$work/times.csv" \
  -n "psick metadata" "$task metadata" \
  -n "pxp-module-puppet metadata" "$ruby $ruby_module metadata" \
  -n "psick run" "sh -c '$task run < $work/request.json'" \
  -n "pxp-module-puppet run" "sh -c '$ruby $ruby_module run < $work/request.json'" >&2

median() { awk -F, -v n="$1" '$1 == n { printf "%.1f", $4 * 1000 }' "$work/times.csv"; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
pm=$(median "psick metadata"); rm_=$(median "pxp-module-puppet metadata")
pr=$(median "psick run"); rr=$(median "pxp-module-puppet run")
cat <<TABLE

| module start-up ($ruby) | psick | pxp-module-puppet | difference |
| --- | --- | --- | --- |
| \`metadata\` (median) | ${pm} ms | ${rm_} ms | $(diff_ms "$rm_" "$pm") ms |
| blocking \`run\` around a fake puppet (median) | ${pr} ms | ${rr} ms | $(diff_ms "$rr" "$pr") ms |
TABLE
