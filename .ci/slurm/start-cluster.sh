#!/usr/bin/env bash
# Start a single-node SLURM cluster on localhost (Debian's slurm-wlm and munge, no systemd, no
# accounting database) for tests/test_workflow_slurm.py; .ci/slurm/stop-cluster.sh stops it.
#
# Needs root and Debian/Ubuntu. Installs the packages when missing, writes /etc/slurm/slurm.conf
# (from slurm.conf.in, sized to this machine) and /etc/slurm/gres.conf, starts munged, slurmctld
# and slurmd, and waits until a batch job and a one-GPU job have run. Any failure exits non-zero
# with the daemons' log tails, so CI fails visibly instead of skipping the SLURM test.
# The PIDs of the daemons started here are kept in $STATE_DIR for stop-cluster.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE_DIR=/run/hyena-glt-slurm
MARKER="# written by hyena-glt .ci/slurm/start-cluster.sh"
CONF_DIR=/etc/slurm

fail() {
    echo "start-cluster: ERROR: $*" >&2
    for log in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/munge/munged.log; do
        [ -r "$log" ] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
    done
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || fail "slurm-wlm and munge are missing and there is no apt-get"
    echo "start-cluster: installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || fail "apt-get install slurm-wlm munge failed"
fi

if scontrol ping >/dev/null 2>&1; then
    echo "start-cluster: a SLURM controller already answers; using it, starting nothing"
    exit 0
fi

# Configuration, sized to this machine (leave ~1 GB of memory to the system).
if [ -e "$CONF_DIR/slurm.conf" ] && ! grep -qxF "$MARKER" "$CONF_DIR/slurm.conf"; then
    fail "$CONF_DIR/slurm.conf exists and was not written by this script; not replacing it"
fi
cpus="$(nproc)"
memory_mb="$(( $(free -m | awk '/^Mem:/ {print $2}') - 1000 ))"
mkdir -p "$CONF_DIR"
{
    echo "$MARKER"
    sed -e "s/@CPUS@/$cpus/" -e "s/@MEMORY_MB@/$memory_mb/" "$HERE/slurm.conf.in"
} > "$CONF_DIR/slurm.conf"
{ echo "$MARKER"; cat "$HERE/gres.conf"; } > "$CONF_DIR/gres.conf"

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge "$STATE_DIR"
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create \
    || fail "could not create the munge key"

# start NAME PIDFILE COMMAND...: run a daemon that forks into the background; record its PID.
start() {
    local name="$1" pidfile="$2"
    shift 2
    rm -f "$pidfile"
    "$@" || fail "$name did not start"
    for _ in $(seq 50); do
        [ -s "$pidfile" ] && break
        sleep 0.2
    done
    [ -s "$pidfile" ] || fail "$name wrote no pid file $pidfile"
    echo "$name $(cat "$pidfile")" >> "$STATE_DIR/daemons"
    echo "start-cluster: $name running (pid $(cat "$pidfile"))"
}

# The package's init script may have started munged already (where policy-rc.d allows it).
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "start-cluster: munged already running; using it"
else
    start munged /run/munge/munged.pid runuser -u munge -- munged
fi
start slurmctld /run/slurmctld.pid slurmctld -c   # -c: forget jobs of an earlier run
start slurmd /run/slurmd.pid slurmd

state=""
for _ in $(seq 60); do
    state="$(sinfo -h -n localhost -o %T 2>/dev/null || true)"
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || fail "node localhost is '${state:-not answering}', not idle after 60 s: $(sinfo -h -R 2>&1)"

# Prove that batch jobs and GPU-shaped jobs run before the tests rely on it.
batch="$(timeout 60 sbatch --parsable --wait -t 1 -o /dev/null --wrap true)" \
    || fail "a trivial sbatch job did not complete"
gpus="$(timeout 60 srun -t 1 --gpus=1 printenv CUDA_VISIBLE_DEVICES)" \
    || fail "srun --gpus=1 failed"
[ "$gpus" = 0 ] || fail "a --gpus=1 job saw CUDA_VISIBLE_DEVICES='$gpus', expected 0"
echo "start-cluster: SLURM is up ($cpus CPUs, $memory_mb MB, gpu:fake:1); batch job $batch and a --gpus=1 step ran"
