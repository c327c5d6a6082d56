#!/usr/bin/env bash
# `clarity jobs slurm` on a real single-node Slurm cluster:
#
#   scripts/slurm-test.sh [CLARITY_BINARY]
#
# 1. Installs Debian's slurm-wlm (which brings munge) when it is missing and we are root or
#    have passwordless sudo; prints SKIPPED and exits 0 when it cannot.
# 2. In a temp dir: a private munged (own key and socket) and a minimal slurm.conf (this host
#    on 127.0.0.1, private ports, no accounting, no cgroups), then slurmctld and slurmd in the
#    foreground, as background processes stopped at exit (trap).
# 3. `clarity jobs slurm examples/shards.toml --shards 4` → submit.sh; `bash submit.sh`
#    submits the 4-task job array and the dependent merge job; waits for the merge job.
# 4. The merged sweep directory equals a plain `clarity run` of the same config byte for byte
#    (diff -r; telemetry.json, the journal and hidden files are not compared: timings, PIDs).
#
# CLARITY_SKIP_SLURM=1 skips on purpose. Takes seconds once the packages are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

skip() {
  echo "SKIPPED Slurm test: $*"
  exit 0
}
[[ "${CLARITY_SKIP_SLURM:-}" == 1 ]] && skip "CLARITY_SKIP_SLURM=1"

TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
BIN="${1:-$TARGET/debug/clarity}"
if [[ ! -x "$BIN" ]]; then
  echo "==> building the clarity binary"
  cargo build -p clarity-cli --locked
fi
BIN="$(realpath "$BIN")"
CONFIG="$ROOT/examples/shards.toml"

# slurmd starts jobs as their user, so the daemons need root.
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
    || skip "not root and no passwordless sudo (slurmd must run as root)"
  SUDO="sudo -n"
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || skip "slurm-wlm missing and no apt-get to install it"
  echo "==> installing slurm-wlm (Debian package)"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm; } \
    >/tmp/clarity-slurm-apt.log 2>&1 \
    || { tail -20 /tmp/clarity-slurm-apt.log; skip "apt-get install slurm-wlm failed (log above)"; }
fi
SBIN=/usr/sbin
[[ -x "$SBIN/slurmctld" ]] || SBIN="$(dirname "$(command -v slurmctld)")"

W="$(mktemp -d /tmp/clarity-slurm.XXXXXX)"
chmod 755 "$W" # munged checks the socket directory's permissions
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do $SUDO kill "$p" 2>/dev/null || true; done
  [[ -f "$W/munge/munged.pid" ]] && $SUDO kill "$(cat "$W/munge/munged.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ $rc != 0 ]]; then
    echo "--- Slurm logs ($W/log) ---"
    tail -n 30 "$W"/log/* "$W"/merged.shards/*.log 2>/dev/null || true
  fi
  $SUDO rm -rf "$W"
}
trap cleanup EXIT

# A private munged: its own key and socket, so nothing on the host is touched.
mkdir -p "$W/munge" "$W/state" "$W/spool" "$W/log"
chmod 700 "$W/munge"
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$W/munge/munge.key"
SOCK="$W/munge/munge.socket"
$SUDO "$SBIN/munged" --force -S "$SOCK" --key-file="$W/munge/munge.key" \
  --pid-file="$W/munge/munged.pid" --log-file="$W/log/munged.log" --seed-file="$W/munge/seed"

# Private ports (two sessions on one host do not collide).
PORT=$((20000 + RANDOM % 20000))
HOST="$(hostname -s)"
cat >"$W/slurm.conf" <<EOF
ClusterName=claritytest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"
echo "==> starting slurmctld and slurmd (ports $PORT, $((PORT + 1)))"
$SUDO env SLURM_CONF="$SLURM_CONF" "$SBIN/slurmctld" -D -i -f "$SLURM_CONF" >"$W/log/slurmctld.out" 2>&1 &
PIDS+=($!)
$SUDO env SLURM_CONF="$SLURM_CONF" "$SBIN/slurmd" -D -f "$SLURM_CONF" >"$W/log/slurmd.out" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 60); do
  if [[ "$(sinfo -h -o %t 2>/dev/null)" == idle ]]; then up=1; break; fi
  sleep 0.5
done
[[ $up == 1 ]] || { echo "FAILED: the Slurm node did not come up"; sinfo || true; exit 1; }

echo "==> clarity jobs slurm examples/shards.toml --shards 4; bash submit.sh"
# The shards share a cache of their own; the plain run below uses none (independent results).
export CLARITY_CACHE_DIR="$W/cache"
"$BIN" jobs slurm "$CONFIG" --shards 4 -o "$W/merged" --clarity "$BIN" >"$W/submit.sh"
said="$(cd "$W" && bash submit.sh)"
echo "$said"
merge_job="$(sed -n 's/.*merge: job \([0-9]*\).*/\1/p' <<<"$said")"
[[ -n "$merge_job" ]] || { echo "FAILED: no merge job id in the submit script's output"; exit 1; }
state=""
for _ in $(seq 600); do
  state="$(scontrol show job "$merge_job" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
  case "$state" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  sleep 0.5
done
[[ "$state" == COMPLETED ]] || { echo "FAILED: merge job $merge_job ended $state"; exit 1; }
ls "$W"/merged.shards/shard-{0,1,2,3}/shard.json >/dev/null

echo "==> plain unsharded run, then diff -r against the merged sweep"
"$BIN" run "$CONFIG" -o "$W/plain" --no-cache -q
diff -r -x telemetry.json -x journal.jsonl -x '.*' "$W/plain" "$W/merged"
n="$(find "$W/plain" -maxdepth 1 -type f ! -name 'telemetry.json' ! -name '.*' | wc -l)"
echo "PASSED Slurm test: 4 array tasks + merge job = plain run ($n files byte-identical)"
