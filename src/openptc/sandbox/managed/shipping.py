"""The host's side of the replay harness: the harness as shipped, the code that installs it and
runs a pass, and how its answer is found in an interpreter's output.

The harness runs where no ``openptc`` exists, so it is shipped as source text: the whole source
of the modules it shares (``ptc_program``, which the live runtime imports too, and
``ptc_fixed_clock``), then its own, compiled there as one module. No definitions are picked out
of another file: each module is shipped whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from openptc.sandbox.bundle import SHIPPED_MODULES
from openptc.sandbox.managed.harness import Json, envelope

MARKER_PREFIX = "__OPENPTC_REPLAY_"
# The harness as shipped, in order: what it uses first, then harness.py itself.
HARNESS_PARTS = (
    SHIPPED_MODULES / "ptc_program.py",
    SHIPPED_MODULES / "ptc_fixed_clock.py",
    Path(__file__).with_name("harness.py"),
)


def harness_source() -> str:
    """The harness as one text: the shared modules' source, then harness.py's."""
    return "\n\n".join(part.read_text() for part in HARNESS_PARTS)


def marker_for(nonce: str) -> str:
    return f"{MARKER_PREFIX}{nonce}__"


def setup_code(
    source: str, module: str, marker: str, preloaded: Sequence[Json], *, announce: bool = True
) -> str:
    """Code that installs the harness as module ``module`` and opens its session.

    It prints whether the session is ready; without ``announce``, only if it is not (the code
    then goes in front of a pass, for an interpreter that keeps no state between runs).
    """
    config = json.dumps({"marker": marker, "preloaded": list(preloaded)})
    return f"""\
def _openptc_replay_setup():
    import sys, types
    module = types.ModuleType({module!r})
    sys.modules[{module!r}] = module
    code = compile({source!r}, "<openptc replay harness>", "exec", dont_inherit=True)
    exec(code, module.__dict__)
    module.session, line = module.open_session({config!r})
    if {announce!r} or module.session is None:
        print(line)
_openptc_replay_setup()
del _openptc_replay_setup
"""


def pass_code(module: str, marker: str, config: Json, new_steps: Sequence[Sequence[str]]) -> str:
    """One pass as one expression; ``new_steps`` hold table entries already encoded as JSON."""
    head = json.dumps(config, separators=(",", ":"))
    steps = ",".join("[" + ",".join(step) + "]" for step in new_steps)
    config_text = head[:-1] + ',"table":[' + steps + "]}"
    missing = envelope(marker, {"status": "need_setup"})
    sessions = f'getattr(__import__("sys").modules.get({module!r}), "session", None)'
    return (
        f"print({sessions}.run_pass({config_text!r}) if {sessions} is not None else {missing!r})\n"
    )


def parse_envelope(stdout: str, marker: str) -> Json | None:
    """The harness's answer in an interpreter's stdout; None if absent, ValueError if cut short."""
    start = stdout.rfind(f"\n{marker} ")
    if start < 0:
        return None
    line = stdout[start + len(marker) + 2 :].split("\n", 1)[0]
    payload = json.loads(line)
    if not isinstance(payload, dict) or not isinstance(payload.get("status"), str):
        raise ValueError("the replay result has no status")
    return payload
