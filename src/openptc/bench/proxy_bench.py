"""``ptc bench proxy``: what the Anthropic-compatible proxy adds to a request, and how it holds
up when many requests arrive at once.

The proxy runs as ``ptc serve`` runs it (``create_app`` under uvicorn on 127.0.0.1, JSON logs at
info level, uvicorn's default loop and HTTP parser) in a child process of its own, with scripted
backends that answer in microseconds, so the proxy is what gets measured. The client is this
process. Baselines come from the same run, interleaved with the proxy's rounds:

* the backend's ``generate()`` called in-process: the request without any proxy;
* a bare Starlette endpoint on the same uvicorn setup (its own child process) that reads the
  request and answers the bytes the proxy answered: the HTTP floor on this machine;
* for PTC requests, the same sandbox sessions opened and run on a ``LocalSandbox`` in-process.

Overhead is proxy p50 - in-process p50; the proxy's own cost is proxy p50 - bare HTTP p50.

The phases live in modules of their own: :mod:`~openptc.bench.proxy_latency` (sequential
overhead), :mod:`~openptc.bench.proxy_concurrent_text` and
:mod:`~openptc.bench.proxy_concurrent_ptc`; the servers in :mod:`~openptc.bench.proxy_server`.
This module runs them in order and assembles the report.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from openptc.bench.proxy_concurrent_ptc import concurrent_ptc
from openptc.bench.proxy_concurrent_text import concurrent_text
from openptc.bench.proxy_figures import Progress
from openptc.bench.proxy_latency import request_latency
from openptc.bench.proxy_requests import CLIENT, keep_alive_client
from openptc.bench.proxy_server import KEEP_ALIVE_S, LOG_LEVEL, served
from openptc.bench.proxy_workload import TEXT_BODY
from openptc.bench.report import report_header


async def run_proxy_bench(
    *,
    quick: bool = False,
    requests: int | None = None,
    concurrent: int = 200,
    ptc_concurrent: int = 20,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Every proxy figure, each against its baseline from this run; returns the JSON report."""
    sequential = requests if requests is not None else (60 if quick else 300)
    rounds = max(1, min(10, sequential // 10))
    bursts = 1 if quick else 5
    load_at_start = os.getloadavg()  # other work on a shared machine moves every figure
    with tempfile.TemporaryDirectory(prefix="ptc-bench-proxy-") as logs:
        log_dir = Path(logs)
        async with served("proxy", log_dir) as proxy:
            # the proxy's own bytes are the bare endpoint's
            async with keep_alive_client() as client:
                response = await client.post(f"{proxy.url}/v1/messages", content=TEXT_BODY)
                response.raise_for_status()
            async with served("bare", log_dir, response.content) as bare:
                figures = await request_latency(proxy, bare, sequential, rounds, progress)
                figures.append(await concurrent_text(proxy, bare, concurrent, bursts, progress))
            ptc, isolation = await concurrent_ptc(
                proxy.url, ptc_concurrent, 1 if quick else 3, 5 if quick else 15, progress
            )
            figures.append(ptc)
    return {
        **report_header("proxy"),
        "client": CLIENT,
        "server": {
            "app": "openptc.proxy.app.create_app, default store and sandbox, scripted backends",
            "uvicorn": "127.0.0.1, own process, loop/http 'auto', access log off, "
            f"proxy logs at {LOG_LEVEL} (as ptc serve), keep-alive {KEEP_ALIVE_S} s",
            "uvloop": importlib.util.find_spec("uvloop") is not None,
            "httptools": importlib.util.find_spec("httptools") is not None,
        },
        "response_bytes": len(response.content),
        "load_average": {"at_start": load_at_start, "at_end": os.getloadavg()},
        # From the baseline's LocalSandbox: same machine and choice as the proxy's own.
        "sandbox_isolation": asdict(isolation),
        "figures": [f.report() for f in figures],
    }
