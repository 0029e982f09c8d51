#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine (slurmctld + slurmd, with
# munge), for CI and for trying the Slurm scripts without a cluster. Needs
# root (or sudo); installs Debian's slurm-wlm and munge when missing.
#
#   scripts/slurm/local-cluster.sh          # start; prints the node once it is idle
#   scripts/slurm/local-cluster.sh stop
#
# The node offers this machine's cores; jobs run as the calling user.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

if [ "${1:-start}" = stop ]; then
  $sudo pkill -x slurmd || true
  $sudo pkill -x slurmctld || true
  $sudo pkill -x munged || true
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }
fi

host=$(hostname -s)
cpus=$(nproc)
user=$(id -un)
conf=/etc/slurm/slurm.conf
$sudo mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
# Process tracking by the process tree and no task plugin: no cgroups, which
# containers (and CI machines) often do not delegate.
$sudo tee "$conf" >/dev/null <<CONF
ClusterName=deepsent-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

# munge: a key if there is none, the daemon if it is not running.
if [ ! -s /etc/munge/munge.key ]; then
  $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
$sudo chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
$sudo chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || $sudo -u munge /usr/sbin/munged 2>/dev/null || $sudo /usr/sbin/munged --force

pgrep -x slurmctld >/dev/null || $sudo /usr/sbin/slurmctld -c
pgrep -x slurmd >/dev/null || $sudo /usr/sbin/slurmd -c
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  case "$state" in
    idle*|mix*|alloc*) echo "slurm: node $host ($cpus CPUs) is $state; jobs run as $user"; exit 0 ;;
  esac
  sleep 1
done
echo "slurm: the node did not come up; logs:" >&2
$sudo tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
