"""The README's reasoning-and-caching example runs as written, against the Anthropic fake.

The example names a real model; ``ANTHROPIC_BASE_URL`` (read by the official SDK) points it at
the wire-faithful fake, which thinks when asked, checks its thinking comes back signed and
unchanged, and bills cache reads for a repeated prefix.
"""

from __future__ import annotations

import asyncio
import sys

from fakes.anthropic_fixture import running
from fakes.anthropic_server import FAKE_API_KEY
from test_front_door import readme_block


async def test_readme_reasoning_example_runs_against_the_fake() -> None:
    async with running() as fake:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            readme_block("ModelSettings(reasoning="),
            env={
                "PATH": "/usr/bin:/bin",
                "ANTHROPIC_BASE_URL": fake.url,
                "ANTHROPIC_API_KEY": FAKE_API_KEY,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        bodies = fake.bodies
    assert process.returncode == 0, err.decode()
    answer, reasoned, cached = out.decode().splitlines()
    assert answer == "4 of 24 engineering members exceeded their Q3 travel budget"
    assert reasoned.startswith("reasoned 2 times, ")
    assert not reasoned.endswith(" 0 reasoning tokens"), reasoned
    read = int(cached.partition(" of ")[0].replace(",", ""))
    assert read > 0, cached
    assert len(bodies) == 2
    assert all(body["thinking"]["type"] in ("enabled", "adaptive") for body in bodies)
    assert all(body["stop_sequences"] == ["DONE"] for body in bodies)
    # The second call carried the first call's thinking back, signed, in front of its code call.
    first_turn = bodies[1]["messages"][1]["content"]
    assert first_turn[0]["type"] == "thinking" and first_turn[0]["signature"]
