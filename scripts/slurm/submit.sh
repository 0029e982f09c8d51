#!/usr/bin/env bash
# Runs a deepsent study on Slurm: one array task per job of its plan, at most
# $PARALLEL at once, then one job that assembles the report once they all
# succeeded. The report directory is the only state the tasks share: it must
# be on a filesystem every node mounts, with atomic rename and O_EXCL create
# (NFSv3+, Lustre, GPFS, CephFS all have both).
#
#   scripts/slurm/submit.sh EXPERIMENT REPORT [deepsent reproduce options…]
#
# Environment:
#   DEEPSENT     the deepsent binary [default: deepsent on PATH]
#   PARALLEL     array tasks at once [default: 4]
#   SBATCH_ARGS  more sbatch options for every job, e.g. "--partition=cpu --cpus-per-task=8"
#   WAIT=1       wait until the report is assembled (exit status: the assembly's)
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
experiment=$1
report=$2
shift 2
deepsent=${DEEPSENT:-deepsent}
here=$(cd "$(dirname "$0")" && pwd)
read -r -a sbatch_args <<< "${SBATCH_ARGS:-}"

jobs=$("$deepsent" reproduce "$experiment" --out "$report" "$@" --plan | wc -l)
if [ "$jobs" -eq 0 ]; then
  echo "the plan of $experiment has no jobs" >&2
  exit 1
fi
mkdir -p "$report/slurm"
array=$(sbatch --parsable "${sbatch_args[@]}" --array="0-$((jobs - 1))%${PARALLEL:-4}" \
  --output="$report/slurm/job-%a.out" --export="ALL,DEEPSENT=$deepsent" \
  "$here/job.sbatch" "$experiment" "$report" "$@")
array=${array%%;*}
assemble_command=$(printf '%q ' "$deepsent" reproduce "$experiment" --out "$report" "$@")
wait_flag=()
[ "${WAIT:-0}" = 1 ] && wait_flag=(--wait)
assemble=$(sbatch --parsable "${wait_flag[@]}" "${sbatch_args[@]}" --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --job-name=deepsent-report --output="$report/slurm/assemble.out" --wrap "$assemble_command")
echo "submitted: array $array ($jobs jobs, at most ${PARALLEL:-4} at once), then $assemble assembles $report"
