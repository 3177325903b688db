# shellcheck shell=bash
# bench/lib.sh: what bench/run and bench/profile share. Sourced, not run: the caller has done
# `set -euo pipefail`, is in the repository root and has set `log_tag` (the prefix of its log
# lines). Everything here stays in the calling shell (no subshell): port de-duplication and the
# started-process list only work that way.
#
# Globals it keeps: pids (processes to stop at exit), removed_at_exit, used_ports, run_dir, python,
# server_pid.
# Globals it reads: KEEP_RUN_DIR, NO_BUILD, WORKERS, LOG_LEVEL, DRAIN_MS.

log() { printf '[%s %s] %s\n' "${log_tag:-${0##*/}}" "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Install (idempotent): scripts/install-deps, then the packages given. install_packages
# REQUIRED... [-- OPTIONAL...]: if installing everything missing fails, the required ones alone
# are tried again, so a missing optional package (php-fpm, linux-perf) never stops the run.
install_packages() {
  local required=() optional=() missing=() missing_required=() p in_optional=0 sudo=""
  for p in "$@"; do
    if [ "$p" = -- ]; then in_optional=1; elif [ "$in_optional" = 1 ]; then optional+=("$p"); else required+=("$p"); fi
  done
  ./scripts/install-deps
  for p in "${required[@]}" "${optional[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    missing+=("$p")
    [[ " ${required[*]} " == *" $p "* ]] && missing_required+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing: ${missing[*]}"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && return 0
  [ ${#missing_required[@]} -eq 0 ] && return 0
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing_required[@]}" >/dev/null
}

python=/usr/bin/python3
[ -x "$python" ] || python=python3

# ---------------------------------------------------------------------------------------------
# The run directory and every process started: stopped by pid at exit, however the script ends.
pids=()
run_dir=""
track_pid() { pids+=("$1"); }
forget_pid() {
  local kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
stop_pid() {  # pid [signal]: signal it (TERM), wait for it, forget it
  kill "-${2:-TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}
# remove_at_exit PATH: removed at exit however the script ends (unless KEEP_RUN_DIR=1), for
# what must not outlive the run outside the run dir (the spool under bench/: sealed tokens).
removed_at_exit=()
remove_at_exit() { removed_at_exit+=("$1"); }
cleanup() {
  local status=$? pid path
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_RUN_DIR:-0}" != 1 ]; then
    for path in "${removed_at_exit[@]}"; do rm -rf -- "$path"; done
  fi
  [ -n "$run_dir" ] || return 0
  if [ "$status" -eq 0 ] && [ "${KEEP_RUN_DIR:-0}" != 1 ]; then
    case "$run_dir" in /tmp/crocante-*) rm -rf -- "$run_dir" ;; esac
  else
    log "run directory kept: $run_dir"
  fi
}
make_run_dir() {  # name: a fresh /tmp/crocante-NAME.XXXXXX into run_dir, removed at a successful exit
  run_dir=$(mktemp -d "/tmp/crocante-$1.XXXXXX")
  chmod 0755 "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Build release and copy the binaries into the run dir: other builds in .build cannot change
# them mid-run.
build_release() {
  if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building release (may wait for another build's lock)"
    swift build -c release --product crocante-logout >&2
    swift build -c release --product crocante-standin-backend >&2
  fi
  local bin
  bin=$(swift build -c release --show-bin-path)
  cp "$bin/crocante-logout" "$bin/crocante-standin-backend" "$run_dir/"
}

# ---------------------------------------------------------------------------------------------
# Ports. free_port VAR assigns instead of printing: `$(free_port)` would run in a subshell,
# whose additions to used_ports are lost, so two calls could hand out the same port.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
used_ports=" "
free_port() {  # VAR (may be an array element): a loopback port nothing listens on, unique in this run
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    [[ "$used_ports" == *" $port "* ]] && continue
    port_in_use "$port" && continue
    used_ports+="$port "
    printf -v "$1" '%s' "$port"
    return 0
  done
}
wait_for_port() {  # port: up to 10 s for something to listen on it
  for _ in $(seq 100); do port_in_use "$1" && return 0; sleep 0.1; done
  log "nothing listens on $1"; return 1
}
wait_for_socket() {  # path [tenths of a second, 200]
  for _ in $(seq "${2:-200}"); do [ -S "$1" ] && return 0; sleep 0.1; done
  log "no socket at $1"; return 1
}

# ---------------------------------------------------------------------------------------------
# Secret and cookie. new_session PREFIX: a fresh SESSION_SECRET (exported, never written to a
# file), a token PREFIX-<hex> in session_token and `crocante_session=<sealed>` in session_cookie.
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
new_session() {
  export SESSION_SECRET
  SESSION_SECRET=$(random_hex 32)
  session_token="$1-$(random_hex 20)"
  # shellcheck disable=SC2034  # read by the caller
  session_cookie="crocante_session=$("$run_dir/crocante-logout" seal --token "$session_token")"
}

# ---------------------------------------------------------------------------------------------
# The responder. start_responder NAME GATEWAY_URL [VAR=value...] -- COMMAND...: `COMMAND serve`
# listening on $run_dir/NAME.sock, its stdout in NAME.out (rewritten each start: its last line is
# the final status JSON), its log appended to NAME.log. Sets server_pid.
server_pid=""
start_responder() {
  local name=$1 gateway=$2 settings=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do settings+=("$1"); shift; done
  shift
  rm -f "$run_dir/$name.sock"
  env API_GATEWAY="$gateway" EP_AUTH_LOGOUT=auth/logout APP_ENV=production CROCANTE_LISTEN="unix:$run_dir/$name.sock" \
    CROCANTE_WORKERS="$WORKERS" CROCANTE_LOG_LEVEL="$LOG_LEVEL" CROCANTE_DRAIN_TIMEOUT_MS="$DRAIN_MS" "${settings[@]}" \
    "$@" serve >"$run_dir/$name.out" 2>>"$run_dir/$name.log" &
  server_pid=$!
  track_pid "$server_pid"
  wait_for_socket "$run_dir/$name.sock" 600
}
# responder_totals NAME: the final status JSON of the last stop (the last line of NAME.out), or
# {} when the responder did not stop cleanly. Never the human `stopped` log line.
responder_totals() {
  "$python" -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
try:
    totals = json.loads(lines[-1]) if lines else {}
except ValueError:
    totals = {}
print(json.dumps(totals if isinstance(totals, dict) else {}, separators=(",", ":")))' "$run_dir/$1.out"
}

# utime and stime (clock ticks) of a process, "0 0" once it is gone.
cpu_times() { awk '{sub(/^.*\) /, ""); print $12, $13}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }
