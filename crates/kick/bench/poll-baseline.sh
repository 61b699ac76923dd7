#!/bin/sh
# Baseline for the completion-latency benchmark: what the Ruby orchestrator
# client and Bolt's PCP transport do. Submit the task, poll GET /jobs/:id
# every second until the job is done, then fetch the nodes once.
# Usage: poll-baseline.sh SERVICE_URL TOKEN_FILE TASK_JSON
set -eu
url=$1/orchestrator/v1
tok=$(cat "$2")
job=$(curl -sf -H "X-Authentication: $tok" -H 'Content-Type: application/json' \
  -d "$3" "$url/command/task" | jq -r .job.name)
while :; do
  sleep 1
  state=$(curl -sf -H "X-Authentication: $tok" "$url/jobs/$job" | jq -r .state)
  case $state in finished|failed|stopped) break ;; esac
done
curl -sf -H "X-Authentication: $tok" "$url/jobs/$job/nodes" > /dev/null
