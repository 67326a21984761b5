"""Benchmark reports: the same header and the same file naming for every benchmark."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def report_header(benchmark: str) -> dict[str, Any]:
    """Which benchmark ran, when, and on what machine (figures mean little without it)."""
    return {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }


def write_report(report: dict[str, Any], directory: Path) -> Path:
    """Write ``report`` as ``<benchmark>-<timestamp>.json`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = report["when"].replace(":", "").replace("-", "")
    path = directory / f"{report['benchmark']}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
