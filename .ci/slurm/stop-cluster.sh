#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/start-cluster.sh started (by the PIDs it recorded), after
# cancelling the jobs still queued on that cluster. Does nothing when it started none.
set -uo pipefail
STATE_DIR=/run/hyena-glt-slurm

if [ ! -s "$STATE_DIR/daemons" ]; then
    echo "stop-cluster: no daemons recorded in $STATE_DIR; nothing to stop"
    exit 0
fi

if grep -q '^slurmctld ' "$STATE_DIR/daemons"; then
    jobs="$(squeue -h -o %i 2>/dev/null)"
    [ -n "$jobs" ] && { echo "stop-cluster: cancelling jobs $jobs"; scancel $jobs; sleep 2; }
fi

# Newest first: slurmd, slurmctld, munged.
status=0
while read -r name pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "stop-cluster: $name (pid $pid) had already exited"
        continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop-cluster: $name (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid"
        status=1
    else
        echo "stop-cluster: stopped $name (pid $pid)"
    fi
done < <(tac "$STATE_DIR/daemons")
rm -f "$STATE_DIR/daemons"
exit $status
