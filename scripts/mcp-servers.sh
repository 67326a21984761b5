#!/usr/bin/env bash
# Real third-party MCP servers for the tests of openptc.mcp, installed from the registries (never
# vendored) into a cache directory inside the repository.
#
#   scripts/mcp-servers.sh [DIR]    install what is missing (default DIR: .mcp-servers/ at the repo
#                                   root, gitignored) and print one line per server:
#                                   NAME<TAB>COMMAND  (the executable that starts it over stdio)
#                                   or NAME<TAB>missing: REASON
#
# Python servers (PyPI): mcp-server-time, mcp-server-git, in their own venv (DIR/py), so their
# pinned `mcp` 1.x never meets the project's SDK. Node servers (npm): server-everything,
# server-filesystem, server-memory, under DIR/node. Node and npm come from Debian with apt-get when
# missing and we are root. Versions are pinned for repeatable tests; override with the variables
# below. A server that cannot be had is reported as missing (exit status 0 as long as one of them
# installed), so the tests can skip exactly those with the reason printed here.
# Messages go to stderr; stdout carries only the NAME<TAB>... lines.
set -uo pipefail

: "${MCP_SERVER_TIME_VERSION:=2026.10.19}"
: "${MCP_SERVER_GIT_VERSION:=2026.10.19}"
: "${MCP_SERVER_EVERYTHING_VERSION:=2026.8.31}"
: "${MCP_SERVER_FILESYSTEM_VERSION:=2026.8.31}"
: "${MCP_SERVER_MEMORY_VERSION:=2026.8.31}"

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.mcp-servers}
mkdir -p "$dir" || { echo "mcp-servers.sh: cannot create $dir" >&2; exit 1; }
dir=$(cd "$dir" && pwd)

log() { echo "mcp-servers.sh: $*" >&2; }

# One install at a time per DIR: pytest workers or two shells must not interleave pip and npm runs.
exec 9>"$dir/.lock"
flock -w 600 9 || { log "another install holds $dir/.lock"; exit 1; }

# ---- Python servers -----------------------------------------------------------------------------
py_reason=""
install_python() {
  local venv=$dir/py want="mcp-server-time==$MCP_SERVER_TIME_VERSION mcp-server-git==$MCP_SERVER_GIT_VERSION"
  if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$want" ]; then
    return 0
  fi
  local python
  python=$(command -v python3 || command -v python) || { py_reason="no python3 on PATH"; return 1; }
  log "installing $want into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2 || { py_reason="python3 -m venv failed"; return 1; }
  # (this machine's pip config names extra index folders that may be absent: not worth a line each)
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want 2>&1 |
    grep -v "is ignored: it is neither a file nor a directory" >&2
  [ "${PIPESTATUS[0]}" -eq 0 ] ||
    { py_reason="pip install $want failed (see the messages above)"; return 1; }
  echo "$want" >"$venv/.installed"
}

# ---- Node servers -------------------------------------------------------------------------------
node_reason=""
# node and npm on PATH, else Debian's nodejs + npm with apt-get when we are root; the first attempt
# uses the package lists as they are, the retry refreshes them.
ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing nodejs and npm with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -qq)
    "${apt[@]}" install nodejs npm >/dev/null 2>&1 ||
      { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install nodejs npm >/dev/null 2>&1; } ||
      { node_reason="node/npm not found and apt-get could not install nodejs npm"; return 1; }
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    node_reason="apt-get installed nodejs but node or npm is not on PATH"
    return 1
  fi
  node_reason="node/npm not found and cannot be installed here (needs root and apt-get)"
  return 1
}

install_node() {
  ensure_node || return 1
  local prefix=$dir/node
  local want="@modelcontextprotocol/server-everything@$MCP_SERVER_EVERYTHING_VERSION"
  want+=" @modelcontextprotocol/server-filesystem@$MCP_SERVER_FILESYSTEM_VERSION"
  want+=" @modelcontextprotocol/server-memory@$MCP_SERVER_MEMORY_VERSION"
  if [ -f "$prefix/.installed" ] && [ "$(cat "$prefix/.installed")" = "$want" ]; then
    return 0
  fi
  log "installing $want into $prefix"
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"name": "openptc-mcp-test-servers", "private": true}' >"$prefix/package.json"
  # shellcheck disable=SC2086
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error $want >&2 ||
    { node_reason="npm install failed (see the messages above)"; return 1; }
  echo "$want" >"$prefix/.installed"
}

install_python
install_node

found=0
report() { # NAME PATH REASON-IF-MISSING
  if [ -x "$2" ]; then
    printf '%s\t%s\n' "$1" "$2"
    found=$((found + 1))
  else
    printf '%s\tmissing: %s\n' "$1" "${3:-$2 not found after the install}"
  fi
}
report time "$dir/py/bin/mcp-server-time" "$py_reason"
report git "$dir/py/bin/mcp-server-git" "$py_reason"
report everything "$dir/node/node_modules/.bin/mcp-server-everything" "$node_reason"
report filesystem "$dir/node/node_modules/.bin/mcp-server-filesystem" "$node_reason"
report memory "$dir/node/node_modules/.bin/mcp-server-memory" "$node_reason"
[ "$found" -gt 0 ]
