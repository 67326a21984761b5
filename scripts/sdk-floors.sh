#!/usr/bin/env bash
# The SDK-facing tests at the lowest versions openptc supports (constraints/floors.txt), so a
# floor in pyproject.toml is one that was tested, not a guess; `make test` runs them at the newest.
#
#   scripts/sdk-floors.sh [PYTEST ARGS...]
#
# Two venvs under .venv-floors/ (or $PTC_FLOORS_DIR), made once and reused while the floors file,
# pyproject.toml and this script are unchanged (a hash of the three is kept in each venv):
#   sdk/  openptc with every extra but mcp, at the anthropic, openai, boto3 and pydantic floors;
#         runs the model, proxy, AgentCore and stub/tool-schema tests
#   mcp/  openptc[mcp] at the mcp floor, with the lowest pydantic that mcp itself accepts (mcp 2.0
#         needs a newer pydantic than openptc's own floor); runs the core MCP tests
# Each venv is checked to hold exactly the pinned versions before its tests run. Exits non-zero
# when a venv cannot be made at the floors or any test fails.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$self")/.."

PYTHON=${PYTHON:-python3}
DIR=${PTC_FLOORS_DIR:-.venv-floors}
WORKERS=${PTC_FLOORS_WORKERS:-4} # as `make test`: the tests wait on sockets more than the CPU
FLOORS=constraints/floors.txt

SDK_EXTRAS=anthropic,openai,bedrock,proxy,server,remote,docker
SDK_TESTS=(
  tests/test_model_anthropic.py tests/test_anthropic_prompt_caching.py
  tests/test_anthropic_reasoning.py tests/test_anthropic_sampling_settings.py
  tests/test_proxy_ptc.py tests/test_proxy_reasoning.py
  tests/test_model_openai.py tests/test_openai_reasoning.py
  tests/test_openai_recorded_reasoning.py tests/test_openai_settings.py
  tests/test_model_bedrock.py tests/test_bedrock_invoke_reasoning.py
  tests/test_bedrock_prompt_cache.py tests/test_bedrock_reasoning.py
  tests/test_bedrock_settings.py tests/test_agentcore.py
  tests/test_tools.py tests/test_stubs.py tests/test_tools_from_schemas.py tests/test_code_tool.py
)
MCP_TESTS=(
  tests/test_mcp_tool_source.py tests/test_mcp_code_mode.py
  tests/test_mcp_server_lifecycle.py tests/test_mcp_config.py
)
# What those tests need besides openptc and its extras; not the whole test group, whose framework
# integrations (pydantic-ai, openai-agents, ...) would pull the SDKs above their floors. The
# Bedrock fakes import the bedrock-runtime stubs at run time.
RUNNER=(pytest pytest-asyncio pytest-xdist mypy-boto3-bedrock-runtime)

key=$(cat "$FLOORS" pyproject.toml "$self" | sha256sum | cut -c1-16)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# constraints NAME DROPPED...: the floors file less the DROPPED names, as $work/NAME.txt.
constraints() {
  local out="$work/$1.txt"
  shift
  local drop
  drop=$(printf '%s|' "$@")
  grep -vE "^(${drop%|})==" "$FLOORS" >"$out"
}

pip() { "$DIR/$1/bin/python" -m pip --quiet --quiet "${@:2}"; }

# make_venv NAME EXTRAS: openptc[EXTRAS] and RUNNER under $work/NAME.txt, unless already made.
make_venv() {
  local venv="$DIR/$1"
  [ "$(cat "$venv/.floors-key" 2>/dev/null)" = "$key" ] && return 0
  echo "sdk-floors: making $venv" >&2
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  pip "$1" install --upgrade pip
  pip "$1" install -c "$work/$1.txt" -e ".[$2]" "${RUNNER[@]}"
}

# The lowest pydantic that the installed mcp accepts, from its own requirement.
mcp_pydantic_floor() {
  "$DIR/mcp/bin/python" - <<'EOF'
from importlib.metadata import requires

from packaging.requirements import Requirement

for text in requires("mcp") or []:
    req = Requirement(text)
    if req.name == "pydantic" and (req.marker is None or req.marker.evaluate()):
        print(next(s.version for s in req.specifier if s.operator == ">="))
EOF
}

# check_versions NAME: the venv holds every name==version of $work/NAME.txt; then it is made.
check_versions() {
  "$DIR/$1/bin/python" - "$work/$1.txt" <<'EOF' || return 1
import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

wrong = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        req = Requirement(line)
        pinned = next(iter(req.specifier)).version
        try:
            found = version(req.name)
        except PackageNotFoundError:
            found = "missing"
        if found != pinned:
            wrong.append(f"{req.name} {found} (floor {pinned})")
if wrong:
    sys.exit("sdk-floors: not at the floor: " + ", ".join(wrong))
EOF
  echo "$key" >"$DIR/$1/.floors-key"
}

make_sdk() {
  make_venv sdk "$SDK_EXTRAS"
}

make_mcp() {
  make_venv mcp mcp
  local floor
  floor=$(mcp_pydantic_floor)
  [ -n "$floor" ] || { echo "sdk-floors: mcp names no pydantic floor" >&2; return 1; }
  echo "pydantic==$floor" >>"$work/mcp.txt"
  pip mcp install -c "$work/mcp.txt" "pydantic==$floor"
}

mkdir -p "$DIR"
constraints sdk mcp
constraints mcp anthropic openai boto3 botocore pydantic
# Both venvs at once: installing waits on downloads and disk as much as on the CPU.
make_sdk >"$work/sdk.log" 2>&1 &
sdk_pid=$!
make_mcp >"$work/mcp.log" 2>&1 &
mcp_pid=$!
made=0
wait "$sdk_pid" || made=$?
wait "$mcp_pid" || made=$?
cat "$work/sdk.log" "$work/mcp.log" >&2
if [ "$made" != 0 ]; then
  echo "sdk-floors: could not make the venvs at the floors (a conflict: do pyproject.toml's floors" \
    "agree with $FLOORS? tests/test_sdk_floors.py says)" >&2
  exit 1
fi
check_versions sdk
check_versions mcp

status=0
for name in sdk mcp; do
  tests=("${SDK_TESTS[@]}")
  [ "$name" = mcp ] && tests=("${MCP_TESTS[@]}")
  echo "sdk-floors: $(grep -vE '^\s*(#|$)' "$work/$name.txt" | sed 's/ *#.*//' | tr '\n' ' ')" >&2
  "$DIR/$name/bin/pytest" -p no:cacheprovider -n "$WORKERS" --dist loadfile "${tests[@]}" "$@" ||
    status=$?
done
exit "$status"
