#!/usr/bin/env bash
# A private, throwaway Docker engine for tests and local runs of the Docker sandbox backend.
#
#   scripts/docker.sh start DIR   install docker.io if needed (root + apt), start a dockerd whose
#                                 data root, exec root, pidfile, socket and log all live in DIR,
#                                 and print its address (unix://DIR/docker.sock) once it answers
#   scripts/docker.sh stop DIR    stop the dockerd that 'start DIR' started (by DIR/docker.pid)
#                                 and unmount whatever it left mounted under DIR
#
# Use the address as DOCKER_HOST. The engine never disturbs a system-wide one: it has its own
# sockets and state, creates no bridge network, touches no iptables rules and leaves IP
# forwarding alone (sandboxes run with no network at all). Only the process named in
# DIR/docker.pid is ever signalled. Messages go to stderr; stdout carries only the address.
set -euo pipefail

die() { echo "docker.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start DIR | stop DIR"; }

# dockerd on PATH, else Debian's docker.io installed with apt-get when we are root and apt exists;
# the first attempt uses the package lists as they are, the retry refreshes them.
ensure_dockerd() {
  command -v dockerd >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "docker.sh: installing docker.io with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    # wait (bounded) for another apt run, e.g. 'make sandbox-deps', instead of failing on its lock
    local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -qq)
    "${apt[@]}" install docker.io >/dev/null 2>&1 ||
      { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install docker.io >/dev/null 2>&1; } ||
      die "could not install docker.io with apt-get; install Docker yourself and retry"
    command -v dockerd >/dev/null 2>&1 || die "apt-get installed docker.io but dockerd is not on PATH"
  else
    die "dockerd not found and cannot be installed here (needs root and apt-get); install Docker, start it and set DOCKER_HOST"
  fi
}

# True when process $1 is a live dockerd (not a zombie, nor an unrelated process given its pid).
is_dockerd() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0 # no procfs: trust kill -0
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ "$state" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q '^[^ ]*dockerd'
}

# The pid in DIR/docker.pid, if that process is a live dockerd.
live_pid() {
  local pid
  [ -f "$1/docker.pid" ] || return 1
  pid=$(cat "$1/docker.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && is_dockerd "$pid" && echo "$pid"
}

# True when the engine on socket $1 answers: an HTTP GET /_ping over the unix socket, with the
# docker CLI when there is one (curl is not always installed).
answers() {
  [ -S "$1" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 --unix-socket "$1" http://docker/_ping >/dev/null 2>&1
  else
    DOCKER_HOST="unix://$1" timeout 5 docker version >/dev/null 2>&1
  fi
}

start() {
  local dir=$1 sock pid i
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  sock="$dir/docker.sock"
  # A unix socket's path is limited to 107 bytes; containerd's lives two levels deeper.
  [ ${#dir} -le 60 ] || die "DIR is too long for the engine's sockets (${#dir} > 60 bytes): $dir"
  if live_pid "$dir" >/dev/null; then
    die "a dockerd started from $dir is already running (pid $(cat "$dir/docker.pid")); run '$0 stop $dir' first"
  fi
  ensure_dockerd
  echo '{}' >"$dir/daemon.json" # no /etc/docker/daemon.json of the machine applies
  rm -f "$dir/docker.pid" "$sock"
  # setsid: the engine must not die with the shell (or test) that started it, only by 'stop'
  setsid dockerd --config-file "$dir/daemon.json" \
    --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
    --host "unix://$sock" --bridge none --iptables=false --ip-masq=false --ip-forward=false \
    --log-level warn </dev/null >>"$dir/dockerd.log" 2>&1 &
  # up to 30 s for it to answer; stop waiting early when it has died
  for i in $(seq 300); do
    if answers "$sock" && live_pid "$dir" >/dev/null; then
      echo "unix://$sock"
      return 0
    fi
    if [ "$i" -gt 20 ] && ! live_pid "$dir" >/dev/null && ! kill -0 $! 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  stop "$dir" 2>/dev/null || true
  die "dockerd did not answer on $sock; its log: $(tail -n 5 "$dir/dockerd.log" 2>/dev/null | tr '\n' ' ')"
}

# Mounts the engine left under DIR (it unmounts its own on a clean stop; not after a kill -9).
unmount_leftovers() {
  local dir=$1 mnt
  [ -r /proc/mounts ] || return 0
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done
}

stop() {
  local dir=$1 pid i
  dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
  if pid=$(live_pid "$dir"); then
    kill "$pid" 2>/dev/null || true # SIGTERM: dockerd stops its containers and containerd
    for i in $(seq 150); do
      is_dockerd "$pid" || break
      sleep 0.1
    done
    if is_dockerd "$pid"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/docker.pid"
  unmount_leftovers "$dir"
}

[ $# -eq 2 ] || usage
case $1 in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
