#!/usr/bin/env bash
# The MCP Inspector (@modelcontextprotocol/inspector), for driving `ptc mcp` from its CLI mode in
# the tests, installed from npm (never vendored) into a cache directory inside the repository.
#
#   scripts/mcp-inspector.sh [DIR]   install it if missing (default DIR: .mcp-tools/ at the repo
#                                    root, gitignored) and print the command that runs it, e.g.
#                                    /repo/.mcp-tools/node_modules/.bin/mcp-inspector
#                                    or, when it cannot be had: missing: REASON
#
# Node and npm come from Debian with apt-get when missing and we are root. The version is pinned
# for repeatable tests; override with MCP_INSPECTOR_VERSION. Messages go to stderr; stdout carries
# only the one line above. Exit status 0 whether installed or missing (the reason says which).
# This is a separate npm prefix from scripts/mcp-servers.sh's, so the two never share a lock.
set -uo pipefail

: "${MCP_INSPECTOR_VERSION:=2.12.0}"

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.mcp-tools}
mkdir -p "$dir" || { echo "missing: cannot create $dir"; exit 0; }
dir=$(cd "$dir" && pwd)

log() { echo "mcp-inspector.sh: $*" >&2; }

exec 9>"$dir/.lock"
flock -w 600 9 || { echo "missing: another install holds $dir/.lock"; exit 0; }

ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing nodejs and npm with apt-get"
    local apt=(apt-get -o DPkg::Lock::Timeout=120 -y -qq)
    "${apt[@]}" install nodejs npm >/dev/null 2>&1 ||
      { "${apt[@]}" update >/dev/null 2>&1 && "${apt[@]}" install nodejs npm >/dev/null 2>&1; }
  fi
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}

if ! ensure_node; then
  echo "missing: node/npm not found and cannot be installed here (needs root and apt-get)"
  exit 0
fi

want="@modelcontextprotocol/inspector@$MCP_INSPECTOR_VERSION"
bin=$dir/node_modules/.bin/mcp-inspector
if [ ! -x "$bin" ] || [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
  log "installing $want into $dir"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$want" >&2; then
    echo "missing: npm install $want failed (see the messages above)"
    exit 0
  fi
  echo "$want" >"$dir/.installed"
fi
if [ ! -x "$bin" ]; then
  echo "missing: $want installed no mcp-inspector executable"
  exit 0
fi
echo "$bin"
