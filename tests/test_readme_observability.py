"""The README's OpenTelemetry example runs as written and prints what the run did."""

from __future__ import annotations

import subprocess
import sys

from test_front_door import readme_block


def test_readme_telemetry_example_runs_as_written() -> None:
    done = subprocess.run(
        [sys.executable, "-c", readme_block("OtelObserver(provider)")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "53 spans; the run: 49 tool calls, 2778 input tokens"
