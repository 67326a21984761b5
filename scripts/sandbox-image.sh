#!/usr/bin/env bash
# Builds the sandbox image of the Docker backend from deploy/sandbox.Dockerfile.
#
#   scripts/sandbox-image.sh [--base IMAGE | --local-base] [--tag NAME]
#
#   --base IMAGE   the Dockerfile's BASE (default python:3.11-slim, pulled from a registry)
#   --local-base   no registry needed: a minimal base assembled from this machine's own Debian
#                  python3.X packages (X >= 11; installed with apt when missing and root), imported
#                  with 'docker import' as openptc-base:python3.X-local (kept for later builds)
#   --tag NAME     the image's name; default openptc-sandbox:<first 12 hex of the digest of
#                  runtime.py and ptc_program.py>, the name DockerSandbox looks for
#
# Talks to the engine named by DOCKER_HOST (or the default socket). Prints the image's name on
# stdout once it is built; messages go to stderr.
set -euo pipefail

die() { echo "sandbox-image.sh: $*" >&2; exit 1; }
usage() { die "usage: $0 [--base IMAGE | --local-base] [--tag NAME]"; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SANDBOX_SRC="$ROOT/src/openptc/sandbox"
RUNTIME="$SANDBOX_SRC/runtime.py"
PROGRAM="$SANDBOX_SRC/shipped-modules/ptc_program.py"
DOCKERFILE="$ROOT/deploy/sandbox.Dockerfile"

# What the image ships, as docker/container.py's runtime_digest computes it: sha256 of the
# sha256sum listing of runtime.py, then ptc_program.py, by file name.
bundle_digest() {
  { (cd "${RUNTIME%/*}" && sha256sum "${RUNTIME##*/}") &&
    (cd "${PROGRAM%/*}" && sha256sum "${PROGRAM##*/}"); } | sha256sum | cut -d' ' -f1
}

# the classic builder: BuildKit would need the buildx plugin, which distributions ship apart
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The newest Debian python3.X (X >= 11) whose three packages are installed, e.g. "3.11".
debian_python() {
  local bin ver
  for bin in $(ls -1 /usr/bin/python3.* 2>/dev/null | grep -E '/python3\.[0-9]+$' | sort -t. -k2 -n -r); do
    ver=${bin#/usr/bin/python}
    [ "${ver#3.}" -ge 11 ] || continue
    if installed "python$ver-minimal" && installed "libpython$ver-minimal" &&
      installed "libpython$ver-stdlib"; then
      echo "$ver"
      return 0
    fi
  done
  return 1
}

ensure_debian_python() {
  debian_python && return 0
  command -v dpkg-query >/dev/null 2>&1 || die "--local-base needs a Debian-based machine (dpkg); use --base IMAGE"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "sandbox-image.sh: installing python3 with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -qq)
    "${apt[@]}" install python3 >/dev/null 2>&1 ||
      { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install python3 >/dev/null 2>&1; } ||
      die "could not install python3 with apt-get"
    debian_python && return 0
  fi
  die "no Debian python3 (>= 3.11) packages here; install python3 with apt, or use --base IMAGE"
}

# "usr/lib/x86_64-linux-gnu/libz.so.1" for /lib/x86_64-linux-gnu/libz.so.1: the directory
# resolved (merged /usr), the name kept, no leading slash (relative to / for tar).
canonical() { local dir; dir=$(realpath "${1%/*}"); echo "${dir#/}/${1##*/}"; }

# Every path the interpreter needs, relative to /: the packages' files, the bytecode Debian
# compiled for them at install time, and the shared libraries of the binary and its extensions.
rootfs_files() {
  local ver=$1 f lib
  dpkg -L "python$ver-minimal" "libpython$ver-minimal" "libpython$ver-stdlib" |
    grep -E "^/usr/(bin/python$ver|lib/python$ver/.*)$" | sort -u | while read -r f; do
    [ -d "$f" ] && [ ! -L "$f" ] && continue
    [ -e "$f" ] || continue
    echo "${f#/}"
    if [[ $f == *.py ]]; then
      lib="${f%/*}/__pycache__/${f##*/}"
      lib="${lib%.py}.cpython-${ver/./}.pyc"
      [ -f "$lib" ] && echo "${lib#/}"
    fi
  done
  { echo "/usr/bin/python$ver"; ls "/usr/lib/python$ver/lib-dynload/"*.so; } |
    xargs ldd 2>/dev/null | grep -oE '(=> )?/[^ ]+ \(0x' | sed -E 's/^=> //; s/ \(0x$//' |
    sort -u | while read -r lib; do
    canonical "$lib"
    realpath "$lib" | sed 's|^/||'
  done
}

# Imports openptc-base:python3.X-local unless it exists; prints its name.
local_base() {
  local ver name rootfs d
  ver=$(ensure_debian_python)
  name="openptc-base:python$ver-local"
  if docker image inspect "$name" >/dev/null 2>&1; then
    echo "$name"
    return 0
  fi
  echo "sandbox-image.sh: assembling $name from this machine's python$ver packages" >&2
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  rootfs_files "$ver" | sort -u >"$rootfs.list"
  tar -C / -cf - --no-recursion -T "$rootfs.list" | tar -C "$rootfs" -xpf -
  rm -f "$rootfs.list"
  for d in bin lib lib64 sbin; do # merged /usr, as on the host
    if [ -L "/$d" ] && [ ! -e "$rootfs/$d" ]; then ln -s "$(readlink "/$d")" "$rootfs/$d"; fi
  done
  ln -sf "python$ver" "$rootfs/usr/bin/python3"
  mkdir -p "$rootfs/etc" "$rootfs/tmp" && chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --message "python$ver from this machine's Debian packages (openptc scripts/sandbox-image.sh)" \
    - "$name" >/dev/null || die "docker import of $name failed"
  echo "$name"
}

main() {
  local base="python:3.11-slim" tag="" use_local=0 sha context log
  while [ $# -gt 0 ]; do
    case $1 in
      --base) [ $# -ge 2 ] || usage; base=$2; shift 2 ;;
      --local-base) use_local=1; shift ;;
      --tag) [ $# -ge 2 ] || usage; tag=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  command -v docker >/dev/null 2>&1 || die "the docker command is not installed (scripts/docker.sh start DIR installs and starts an engine)"
  docker version >/dev/null 2>&1 ||
    die "no Docker engine answers at ${DOCKER_HOST:-the default socket}; start dockerd (or scripts/docker.sh start DIR) and set DOCKER_HOST"
  [ -f "$RUNTIME" ] && [ -f "$PROGRAM" ] && [ -f "$DOCKERFILE" ] ||
    die "run from an openptc checkout ($RUNTIME, $PROGRAM, $DOCKERFILE)"
  [ "$use_local" = 1 ] && base=$(local_base)
  sha=$(bundle_digest)
  tag=${tag:-openptc-sandbox:${sha:0:12}}
  # A context of exactly what the Dockerfile copies, not the whole checkout (.venv and all).
  context=$(mktemp -d)
  trap "rm -rf '$context'" EXIT
  mkdir -p "$context/src/openptc/sandbox/shipped-modules"
  cp "$RUNTIME" "$context/src/openptc/sandbox/runtime.py"
  cp "$PROGRAM" "$context/src/openptc/sandbox/shipped-modules/ptc_program.py"
  echo "sandbox-image.sh: building $tag from $base" >&2
  log="$context.log"
  docker build --network none --file "$DOCKERFILE" --build-arg "BASE=$base" \
    --build-arg "RUNTIME_SHA256=$sha" --tag "$tag" "$context" >"$log" 2>&1 ||
    die "docker build of $tag failed: $(tail -n 20 "$log")"
  rm -f "$log"
  echo "$tag"
}

main "$@"
