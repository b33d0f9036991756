"""Fixed text every generated sbatch script carries: the supervisor functions of the batch shell,
the per-task step wrapper, and the event broker. Kept as Python strings so they ship with the
package (no package-data needed) and the script stays one self-contained file.
"""
from __future__ import annotations

# Runs inside every srun task (also inside the container): resolve the node's address for the
# Dynamo listeners, record and check the GPUs Slurm bound to the step, then exec the command.
STEP_SH = r'''#!/bin/bash
# usage: step.sh STEP PLANNED COMMAND
#   PLANNED: HOST=0,1[;HOST=2,3] GPUs the allocation map gives this step per host, or - (CPU only)
set -u
step=$1 planned=$2 cmd=$3
host=${SLURMD_NODENAME:-$(hostname -s)}
addr=$(getent ahostsv4 "$host" 2>/dev/null | awk '{print $1; exit}')
[ -n "$addr" ] || addr=$(hostname -i 2>/dev/null | awk '{print $1}')
# Dynamo's listeners bind (and advertise) this node's address instead of a guessed interface.
export DYN_ADDR=$addr DYN_TCP_RPC_HOST=$addr DYN_TCP_RESPONSE_STREAM_HOST=$addr
export DYN_EVENT_PLANE_HOST=$addr DYN_SYSTEM_HOST=$addr
if [ "${DYN_HTTP_BIND:-node}" = node ]; then export DYN_HTTP_HOST=$addr; else export DYN_HTTP_HOST=$DYN_HTTP_BIND; fi
if [ -n "${DYN_LEADER_HOST:-}" ]; then
  DYN_LEADER_ADDR=$(getent ahostsv4 "$DYN_LEADER_HOST" 2>/dev/null | awk '{print $1; exit}')
  export DYN_LEADER_ADDR=${DYN_LEADER_ADDR:-$DYN_LEADER_HOST}
fi
got=${SLURM_STEP_GPUS:-${CUDA_VISIBLE_DEVICES:-}}
want=-
if [ "$planned" != - ]; then
  want=""
  IFS=';' read -ra entries <<<"$planned"
  for e in "${entries[@]}"; do [ "${e%%=*}" = "$host" ] && want=${e#*=}; done
fi
echo "dynamo-iac: step $step task ${SLURM_PROCID:-0} on $host ($addr): GPUs ${got:-none}," \
  "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}, planned ${want:-none}"
if [ "$want" != - ] && [ "$got" != "$want" ]; then
  echo "dynamo-iac: step $step on $host got GPUs '${got:-none}' but the allocation map says '${want:-none}'" >&2
  exit 97
fi
echo "$host ${got:--} ${CUDA_VISIBLE_DEVICES:--}" >"$DYN_RUN_DIR/placement/$step.$host.${SLURM_PROCID:-0}"
exec bash -c "$cmd"
'''

# ZMQ XSUB/XPUB proxy: with DYN_ZMQ_BROKER_URL set, publishers connect here instead of binding
# tcp://0.0.0.0:<random> on every worker.
BROKER_PY = r'''import sys
import zmq

host, xsub_port, xpub_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = zmq.Context()
xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
xsub.bind(f"tcp://{host}:{xsub_port}")
xpub.bind(f"tcp://{host}:{xpub_port}")
print(f"zmq broker: xsub tcp://{host}:{xsub_port} xpub tcp://{host}:{xpub_port}", flush=True)
try:
    zmq.proxy(xsub, xpub)
except (KeyboardInterrupt, zmq.ContextTerminated):
    pass
'''

# The batch shell's supervisor. Every wait has a deadline; any step that exits before the job
# is done fails the job with a report (failure.txt: the step, why, the tail of its log); the
# EXIT trap stops every step, newest tier first, with SIGTERM and then SIGKILL.
FUNCTIONS_SH = r'''DYN_STEPS=()
declare -A DYN_PID=() DYN_TIER=()
DYN_RC=0
DYN_PROBE_PID=""
DYN_WATCH_PID=""

dyn_event() {  # KIND STEP DETAIL → events.tsv (read by `dynamo-iac slurm submit/status`)
  printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$1" "${2:--}" "${3:-}" >>"$DYN_RUN_DIR/events.tsv"
}

dyn_addr() {  # HOST → its IPv4 address as the batch host resolves it
  local a
  a=$(getent ahostsv4 "$1" 2>/dev/null | awk '{print $1; exit}')
  echo "${a:-$1}"
}

dyn_started() {  # STEP PID TIER
  DYN_STEPS+=("$1"); DYN_PID[$1]=$2; DYN_TIER[$1]=$3
  dyn_event launched "$1" "srun pid $2"
}

dyn_fail() {  # STEP REASON
  local log="$DYN_RUN_DIR/logs/$1.log"
  {
    echo "dynamo-iac: step $1 failed: $2"
    echo "--- last 40 lines of $log ---"
    tail -n 40 "$log" 2>/dev/null | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'   # no terminal colour codes
  } >"$DYN_RUN_DIR/failure.txt"
  cat "$DYN_RUN_DIR/failure.txt" >&2
  dyn_event failed "$1" "$2"
  DYN_RC=1
  exit 1
}

dyn_blame() { sed -n 's/^blame: //p' "$1" | head -n 1; }   # FILE → the step jobprobe.py's output blames

dyn_check_steps() {  # fail on the first step whose srun has exited or whose failure probe fired
  local s rc blame
  if [ -n "$DYN_WATCH_PID" ] && ! kill -0 "$DYN_WATCH_PID" 2>/dev/null; then
    wait "$DYN_WATCH_PID"; rc=$?; DYN_WATCH_PID=""
    cat "$DYN_RUN_DIR/watch.out" >>"$DYN_RUN_DIR/probes.log"
    if [ "$rc" -ne 0 ]; then   # 0: the watch reached the job's time limit
      blame=$(dyn_blame "$DYN_RUN_DIR/watch.out")
      dyn_fail "${blame:-probes}" "$(tail -n 1 "$DYN_RUN_DIR/watch.out")"
    fi
  fi
  for s in "${DYN_STEPS[@]}"; do
    [ "${1:-}" = "$s" ] && continue
    kill -0 "${DYN_PID[$s]}" 2>/dev/null && continue
    wait "${DYN_PID[$s]}"; rc=$?
    dyn_fail "$s" "exited with code $rc"
  done
}

dyn_pids() { local s; for s in "${DYN_STEPS[@]}"; do printf '%s,' "${DYN_PID[$s]}"; done; }

dyn_probe_start() {  # STEP WHAT DEADLINE PROBE-ARGS…: jobprobe in the background, watching every step
  DYN_PROBE_STEP=$1 DYN_PROBE_WHAT=$2
  local deadline=$3
  shift 3
  # started as early as possible: the interpreter's start overlaps the steps' own start-up;
  # --parent: it exits by itself once this script is gone (see dyn_reap)
  "$DYN_PROBE_PY" "$DYN_BIN/jobprobe.py" --parent $$ --deadline "$deadline" --interval "$DYN_PROBE_INTERVAL" \
    --watch "$(dyn_pids)" "$@" >"$DYN_RUN_DIR/probe.out" 2>&1 &
  DYN_PROBE_PID=$!
}

dyn_watch_start() {  # after readiness: every step's failure probes, in the background (exit 3 = fired)
  "$DYN_PROBE_PY" "$DYN_BIN/jobprobe.py" --parent $$ --deadline "$DYN_DEADLINE_JOB" \
    --interval "$DYN_PROBE_INTERVAL" "${DYN_PROBE_ARGS[@]}" watch >"$DYN_RUN_DIR/watch.out" 2>&1 &
  DYN_WATCH_PID=$!
}

dyn_probe_wait() {  # the verdict of dyn_probe_start's probe
  local step=$DYN_PROBE_STEP what=$DYN_PROBE_WHAT rc
  # a plain `wait` lets the TERM trap (scancel) run at once
  wait "$DYN_PROBE_PID"; rc=$?
  DYN_PROBE_PID=""
  cat "$DYN_RUN_DIR/probe.out" >>"$DYN_RUN_DIR/probes.log"
  case $rc in
    0) dyn_event ready "$step" "$what" ;;
    2) dyn_check_steps; dyn_fail "$step" "a watched step exited while waiting for $what" ;;
    3) local blame   # a step's probe failed: "blame: STEP", then the reason
       blame=$(dyn_blame "$DYN_RUN_DIR/probe.out")
       dyn_fail "$blame" "$(tail -n 1 "$DYN_RUN_DIR/probe.out")" ;;
    *) local blame
       blame=$(dyn_blame "$DYN_RUN_DIR/probe.out")
       dyn_fail "${blame:-$step}" "$what: $(tail -n 1 "$DYN_RUN_DIR/probe.out")" ;;
  esac
}

dyn_wait() { dyn_probe_start "$@"; dyn_probe_wait; }   # STEP WHAT DEADLINE PROBE-ARGS…

dyn_nap() { sleep "$1" & wait $!; }  # interruptible by the traps

dyn_usec() { printf -v "$1" '%.0f' "${2}e6"; }   # VAR SECONDS → VAR=microseconds (bash arithmetic)

dyn_poll() {  # STEP WHAT DEADLINE CHECK…: cheap checks in bash, same deadline/watch rules as dyn_wait
  local step=$1 what=$2 deadline=$3 end
  shift 3
  # microseconds in bash arithmetic: no awk process per poll on a busy batch host
  dyn_usec end "$deadline"
  end=$(( ${EPOCHREALTIME/./} + end ))
  until "$@"; do
    dyn_check_steps
    if (( ${EPOCHREALTIME/./} >= end )); then
      dyn_fail "$step" "$what: not ready within the ${deadline} s deadline"
    fi
    dyn_nap "$DYN_PROBE_INTERVAL"
  done
  dyn_event ready "$step" "$what"
}

dyn_tcp() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }   # HOST PORT accepts connections

dyn_files() {  # DIR PREFIX COUNT: COUNT files named PREFIX* exist (one per task of a step)
  local f=("$1/$2"*)
  [ -e "${f[0]}" ] && [ "${#f[@]}" -ge "$3" ]
}

dyn_run_step() {  # STEP DEADLINE: wait until STEP exits 0, watching every other step
  local step=$1 deadline=$2 t0=$SECONDS rc
  while kill -0 "${DYN_PID[$step]}" 2>/dev/null; do
    dyn_check_steps "$step"
    [ $((SECONDS - t0)) -ge "$deadline" ] && dyn_fail "$step" "still running after the ${deadline} s deadline"
    dyn_nap "$DYN_PROBE_INTERVAL"
  done
  wait "${DYN_PID[$step]}"; rc=$?
  [ "$rc" -eq 0 ] || dyn_fail "$step" "exited with code $rc"
  dyn_event done "$step" "exit 0"
  unset "DYN_PID[$step]"
  local keep=() s
  for s in "${DYN_STEPS[@]}"; do [ "$s" = "$step" ] || keep+=("$s"); done
  DYN_STEPS=("${keep[@]}")
}

dyn_serve() {  # until a step exits (failure) or the job is cancelled / hits its time limit
  while :; do
    dyn_check_steps
    dyn_nap "$DYN_PROBE_INTERVAL"
  done
}

dyn_reap() {  # GRACE PID…: SIGTERM, up to GRACE s to exit, then SIGKILL; reaped either way, so the
  # final wait never blocks (a SIGTERM that lands between fork and exec is lost: the KILL is not)
  local grace end p left
  dyn_usec grace "$1"
  shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  end=$(( ${EPOCHREALTIME/./} + grace ))
  while :; do
    left=()
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && break
    if (( ${EPOCHREALTIME/./} >= end )); then kill -KILL "${left[@]}" 2>/dev/null; break; fi
    sleep 0.05
  done
  wait "$@" 2>/dev/null
}

dyn_stop_budget() {  # RC → seconds the whole stop may take (0: no limit)
  # signalled (scancel, time limit): slurmstepd SIGKILLs this script KillWait s after its SIGTERM,
  # so the stop must end before that to SIGKILL stubborn steps itself and record "stopped"
  local kw
  [ "$1" -ge 128 ] || { echo 0; return; }
  kw=$(scontrol show config 2>/dev/null | sed -n 's/^KillWait *= *\([0-9]*\).*/\1/p')
  [ -n "$kw" ] || { echo 0; return; }
  echo $(( kw > 2 ? kw - 2 : 1 ))
}

dyn_stop() {  # EXIT trap: stop every step, benchmark → workers → frontend → infra
  local rc=$?
  # a child forked for `cmd &` or $(…) keeps these traps until it execs: a SIGTERM in that window
  # runs them there — that child just exits; only the script itself stops the job
  [ "$BASHPID" = "$$" ] || return "$rc"
  trap - EXIT INT TERM
  [ "$DYN_RC" -ne 0 ] && rc=$DYN_RC
  dyn_reap 1 $DYN_PROBE_PID $DYN_WATCH_PID
  DYN_PROBE_PID="" DYN_WATCH_PID=""
  dyn_event stopping - "exit $rc"
  local steps tier s ids pids all=() budget grace end tier_end
  budget=$(dyn_stop_budget "$rc")
  dyn_usec grace "$DYN_DEADLINE_STOP"
  end=0
  if [ "$budget" -gt 0 ]; then
    end=$(( ${EPOCHREALTIME/./} + budget * 1000000 ))
    if [ "$budget" -lt "$DYN_DEADLINE_STOP" ]; then
      dyn_event note - "stop deadline cut from ${DYN_DEADLINE_STOP} s to ${budget} s in all: Slurm's KillWait\
 ends the job sooner (fix: set deadlines.stop below KillWait - 2, or raise KillWait in slurm.conf)"
    fi
  fi
  steps=$(squeue -h -s -j "$SLURM_JOB_ID" -o '%i %j' 2>/dev/null)
  for tier in 3 2 1 0; do
    ids=() pids=()
    for s in "${DYN_STEPS[@]}"; do
      [ "${DYN_TIER[$s]}" = "$tier" ] || continue
      all+=("${DYN_PID[$s]}")
      kill -0 "${DYN_PID[$s]}" 2>/dev/null || continue
      pids+=("${DYN_PID[$s]}")
      ids+=($(awk -v n="$s" '$2 == n {print $1}' <<<"$steps"))
    done
    [ ${#pids[@]} -eq 0 ] && continue
    [ ${#ids[@]} -gt 0 ] && scancel --signal=TERM "${ids[@]}" 2>/dev/null
    tier_end=$(( ${EPOCHREALTIME/./} + grace ))
    (( end > 0 && end < tier_end )) && tier_end=$end
    while (( ${EPOCHREALTIME/./} < tier_end )); do
      for s in "${!pids[@]}"; do kill -0 "${pids[$s]}" 2>/dev/null || unset "pids[$s]"; done
      [ ${#pids[@]} -eq 0 ] && break
      sleep 0.1
    done
    if [ ${#pids[@]} -gt 0 ]; then
      [ ${#ids[@]} -gt 0 ] && scancel --signal=KILL "${ids[@]}" 2>/dev/null
      kill -KILL "${pids[@]}" 2>/dev/null
    fi
  done
  # only the steps' own sruns (all stopped above): a bare `wait` would also wait for strays
  [ ${#all[@]} -gt 0 ] && wait "${all[@]}" 2>/dev/null
  dyn_event stopped - "exit $rc"
  exit "$rc"
}
'''
