#!/usr/bin/env bash
# A private, throwaway redis-server for tests and local runs of the proxy with --redis-url.
#
#   scripts/redis.sh start DIR [PORT]   install redis-server if needed (root + apt), start it with
#                                       its pidfile, log and working files in DIR, and print its
#                                       URL (redis://127.0.0.1:PORT/0) once it answers PING
#   scripts/redis.sh stop DIR           stop the server that 'start DIR' started (by DIR/redis.pid)
#
# The server listens on 127.0.0.1 only, in protected mode, and persists nothing. Only the process
# named in DIR/redis.pid is ever signalled: a system-wide redis is never used, stopped or changed.
# Messages go to stderr; stdout carries only the URL.
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR [PORT] | stop DIR"; }

# redis-server on PATH, else installed with apt-get when we are root and apt exists; the first
# attempt uses the package lists as they are, the retry refreshes them (as 'make sandbox-deps').
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis.sh: installing redis-server with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    # wait (bounded) for another apt run, e.g. 'make sandbox-deps', instead of failing on its lock
    local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -qq)
    "${apt[@]}" install redis-server >/dev/null 2>&1 ||
      { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install redis-server >/dev/null 2>&1; } ||
      die "could not install redis-server with apt-get; install it yourself (e.g. 'apt-get install redis-server') and retry"
    command -v redis-server >/dev/null 2>&1 || die "apt-get installed redis-server but it is not on PATH"
  else
    die "redis-server not found and cannot be installed here (needs root and apt-get); install redis-server and retry"
  fi
}

# A TCP port nobody listens on right now (the kernel picks it); a race with another process is
# caught later: the server then dies and start() tries again with a new port.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    echo $((20000 + RANDOM % 40000))
  fi
}

# True when the redis-server started from DIR ($1) answers on port $2: its pidfile names a live
# process and (with redis-cli) the server on that port reports that very pid, so another redis
# that already held the port is never mistaken for ours.
answers() {
  local pid reply
  pid=$(live_pid "$1") || return 1
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$2" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"
  else
    # bash's /dev/tcp, when redis-cli is not installed
    { exec 3<>"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 1 reply <&3 || reply=
    exec 3<&- 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

# True when process $1 is a live redis-server: not a zombie waiting for its parent to reap it,
# nor an unrelated process that was given the pid after redis died.
is_redis() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0 # no procfs: trust kill -0
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ "$state" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q '^[^ ]*redis-server'
}

# The pid in DIR/redis.pid, if that process is a live redis-server.
live_pid() {
  local pid
  [ -f "$1/redis.pid" ] || return 1
  pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && is_redis "$pid" && echo "$pid"
}

start() {
  local dir=$1 wanted=${2:-} port attempt i
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if live_pid "$dir" >/dev/null; then
    die "a redis-server started from $dir is already running (pid $(cat "$dir/redis.pid")); run '$0 stop $dir' first"
  fi
  ensure_redis
  if [ -n "$wanted" ] && { exec 3<>"/dev/tcp/127.0.0.1/$wanted"; } 2>/dev/null; then
    exec 3<&- 3>&-
    die "port $wanted on 127.0.0.1 is already in use; choose another or omit PORT"
  fi
  for attempt in 1 2 3; do
    port=${wanted:-$(free_port)}
    rm -f "$dir/redis.pid"
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
      --save '' --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" \
      >/dev/null 2>&1 || true
    # up to 10 s for it to answer; stop waiting early when it has died (port taken, say)
    for i in $(seq 100); do
      if answers "$dir" "$port"; then
        echo "redis://127.0.0.1:$port/0"
        return 0
      fi
      if [ "$i" -gt 20 ] && ! live_pid "$dir" >/dev/null; then
        break
      fi
      sleep 0.1
    done
    stop "$dir" 2>/dev/null || true
    [ -z "$wanted" ] || break
  done
  die "redis-server did not answer on 127.0.0.1:$port; see $dir/redis.log"
}

stop() {
  local dir=$1 pid i
  pid=$(live_pid "$dir") || { rm -f "$dir/redis.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    is_redis "$pid" || { rm -f "$dir/redis.pid"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/redis.pid"
}

[ $# -ge 2 ] || usage
case $1 in
  start) [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
