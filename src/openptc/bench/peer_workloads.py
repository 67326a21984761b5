"""What `ptc bench peers` asks every engine to do, and how each answer is timed or weighed.

The programs are the same text for every engine, except that an engine whose tools are plain
functions (smolagents) calls them without ``await`` — its native form. Everything is timed from
the host around the engine's own run call, so every engine pays its own way in and out.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openptc.bench.peer_engines import (
    CallStyle,
    Engine,
    PeerSession,
    ProgramFailed,
    one_line,
    spawn_python,
)
from openptc.bench.sandbox_bench import bare_idle_pss, process_tree, pss_kb

TRIVIAL = "x = 1 + 1"
FAN_OUT = """import asyncio
results = await asyncio.gather(*[sleep(0.1) for _ in range(100)])
print(len(results))
"""


def tool_calls_program(style: CallStyle, calls: int) -> tuple[str, str]:
    """``calls`` sequential echo calls, awaited or called as the engine's tools are; and the
    output that proves they all ran."""
    call = "await echo(i)" if style == "await" else "echo(i)"
    code = f"total = 0\nfor i in range({calls}):\n    total += {call}\nprint(total)\n"
    return code, str(sum(range(calls)))


def cpu_program(iterations: int) -> tuple[str, str]:
    code = f"total = 0\nfor i in range({iterations}):\n    total += i * i\nprint(total)\n"
    return code, str(sum(i * i for i in range(iterations)))


# Each probe prints a value that only a correct run prints, and is the same text for every
# engine: "### name -> expected output" and then the program.
PROBE_CORPUS = """
### async/await -> 42
async def double(x):
    return 2 * x
print(await double(21))
### asyncio.gather -> 12
import asyncio
async def double(x):
    return 2 * x
print(sum(await asyncio.gather(*[double(i) for i in range(4)])))
### generators -> 10
def count(n):
    for i in range(n):
        yield i
print(sum(count(5)))
### match -> x=3 pair other
def kind(v):
    match v:
        case {'x': x}:
            return 'x=' + str(x)
        case [a, b]:
            return 'pair'
        case _:
            return 'other'
print(kind({'x': 3}), kind([1, 2]), kind(0))
### dataclasses -> True 2
from dataclasses import dataclass
@dataclass
class Point:
    x: int
    y: int = 0
print(Point(3) == Point(3, 0), Point(1, 2).y)
### nonlocal -> 2
def counter():
    n = 0
    def bump():
        nonlocal n
        n += 1
    bump()
    bump()
    return n
print(counter())
### f-strings -> 3.14|'x'|   3.1
value = 3.14159
name = 'x'
print(f'{value:.2f}|{name!r}|{value:>6.1f}')
### json -> {"a": [1, 2]} 2
import json
print(json.dumps({'a': [1, 2]}), json.loads('[1, 2]')[1])
### classes -> 5
class Counter:
    def __init__(self):
        self.n = 0
    def add(self, k):
        self.n += k
        return self
print(Counter().add(2).add(3).n)
### try/except -> caught 'missing' done
try:
    {}['missing']
except KeyError as exc:
    seen = 'caught ' + str(exc)
finally:
    seen += ' done'
print(seen)
### comprehensions -> [0, 1, 4, 9] {'ab': 2} [0, 1] 6
squares = [i * i for i in range(4)]
lengths = {k: len(k) for k in ['ab']}
print(squares, lengths, sorted({i % 2 for i in range(5)}), sum(i for i in range(4)))
### import re -> ['1', '22', '333']
import re
print(re.findall(r'[0-9]+', 'a1b22c333'))
"""


def _probes(corpus: str) -> dict[str, tuple[str, str]]:
    """The corpus as {name: (program, expected output)}."""
    probes = {}
    for block in corpus.split("### ")[1:]:
        header, program = block.split("\n", 1)
        name, expected = header.split(" -> ")
        probes[name] = (program, expected)
    return probes


PROBES = _probes(PROBE_CORPUS)


def reason(exc: BaseException, limit: int = 240) -> str:
    """Why an engine could not run something, in its own words where it gave any."""
    if isinstance(exc, ProgramFailed):
        return str(exc)
    return one_line(f"{type(exc).__name__}: {exc}", limit)


async def checked_ms(session: PeerSession, code: str, expected: str) -> float:
    """Run ``code`` and time it; a wrong output is a failure, never a figure."""
    started = time.perf_counter()
    printed = await session.run(code)
    elapsed = (time.perf_counter() - started) * 1000
    if printed.strip() != expected:
        raise ProgramFailed(one_line(f"wrong output: {printed.strip()[:80]!r}, not {expected!r}"))
    return elapsed


@dataclass
class Contender:
    """An engine in the run: its live session (for the warm workloads) and why it is out."""

    engine: Engine
    session: PeerSession | None = None
    skipped: str = ""
    setup_ms: float = 0.0  # starting the engine and its first session (imports, probes, pools)


@dataclass
class Samples:
    """Per engine: its measurements, or why it could not be measured (first failure)."""

    values: dict[str, list[float]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    baseline: list[float] = field(default_factory=list)


Measure = Callable[[Contender], Awaitable[float]]


async def interleave(
    contenders: Sequence[Contender],
    rounds: int,
    measure: Measure,
    baseline: Callable[[], Awaitable[float]] | None = None,
) -> Samples:
    """``rounds`` rounds of every engine in turn (and the baseline first), so that the machine's
    drift hits them alike; each round starts one engine further on, so that none always runs
    right after the same neighbour (whose leftover work on the other core slows the next). An
    engine that fails drops out of this workload with its reason."""
    samples = Samples()
    for index in range(rounds):
        if baseline is not None:
            samples.baseline.append(await baseline())
        shift = index % max(len(contenders), 1)
        for contender in [*contenders[shift:], *contenders[:shift]]:
            name = contender.engine.name
            if name in samples.failed:
                continue
            try:
                value = await asyncio.wait_for(measure(contender), timeout=180)
            except Exception as exc:
                samples.failed[name] = reason(exc)
                continue
            samples.values.setdefault(name, []).append(value)
    return samples


async def bare_spawn_ms() -> float:
    """Baseline of a cold start: a bare ``python -I -S -c pass``, spawned and waited for."""
    started = time.perf_counter()
    await spawn_python("pass")
    return (time.perf_counter() - started) * 1000


async def cold_ms(contender: Contender) -> float:
    """A new session and a trivial program in it (closing it is not timed)."""
    started = time.perf_counter()
    session = await contender.engine.open()
    try:
        await session.run(TRIVIAL)
        return (time.perf_counter() - started) * 1000
    finally:
        await session.close()


def live(contender: Contender) -> PeerSession:
    if contender.session is None:
        raise ProgramFailed("no live session")
    return contender.session


async def warm_ms(contender: Contender) -> float:
    started = time.perf_counter()
    await live(contender).run(TRIVIAL)
    return (time.perf_counter() - started) * 1000


def tool_calls_ms_per_call(calls: int) -> Measure:
    async def measure(contender: Contender) -> float:
        code, expected = tool_calls_program(contender.engine.call_style, calls)
        return await checked_ms(live(contender), code, expected) / calls

    return measure


async def fan_out_ms(contender: Contender) -> float:
    return await checked_ms(live(contender), FAN_OUT, "100")


def cpu_ms(iterations: int) -> Measure:
    code, expected = cpu_program(iterations)

    async def measure(contender: Contender) -> float:
        return await checked_ms(live(contender), code, expected)

    return measure


async def coverage(session: PeerSession) -> tuple[dict[str, bool | str], dict[str, str]]:
    """Which probes the engine runs to the right output; and what it printed when wrong."""
    results: dict[str, bool | str] = {}
    wrong: dict[str, str] = {}
    for name, (code, expected) in PROBES.items():
        try:
            printed = (await asyncio.wait_for(session.run(code), timeout=60)).strip()
        except Exception as exc:
            results[name] = f"unsupported: {reason(exc)}"
            continue
        results[name] = printed == expected
        if printed != expected:
            wrong[name] = f"printed {printed[:80]!r}, expected {expected!r}"
    return results, wrong


# --- memory -------------------------------------------------------------------------------------

# Holds ``count`` idle sessions of an in-process engine and weighs what they add to the child.
MEMORY_CHILD = """
import asyncio, gc, json, os
from openptc.bench.peer_engines import {engine} as Engine
from openptc.bench.sandbox_bench import pss_kb

async def main():
    gc.collect()
    start = pss_kb(os.getpid())
    engine = Engine()
    await engine.start()

    async def idle_session():
        session = await engine.open()
        await session.run("x = 1")
        return session

    await idle_session()  # the first pays the engine's one-time costs, not a session's
    gc.collect()
    before = pss_kb(os.getpid())
    held = [await idle_session() for _ in range({count})]
    gc.collect()
    added = (pss_kb(os.getpid()) - before) / {count}
    print(json.dumps({{"per_session_kb": added, "load_kb": before - start}}))

asyncio.run(main())
"""


@dataclass(frozen=True)
class Memory:
    mb: float
    note: str


async def process_sessions_mb(engine: Engine, sessions: int) -> Memory:
    """Sessions that are processes of their own: PSS of each one's process tree, median."""
    opened = [await engine.open() for _ in range(sessions)]
    try:
        for session in opened:
            await session.run("x = 1")
        await asyncio.sleep(0.3)
        pids = [session.pid for session in opened]
        if any(pid is None for pid in pids):
            raise ProgramFailed("a session did not report its process")
        per_session = [sum(pss_kb(p) for p in process_tree(pid)) / 1024 for pid in pids if pid]
    finally:
        for session in opened:
            await session.close()
    return Memory(
        statistics.median(per_session),
        f"PSS of each session's process tree, median of {sessions} idle sessions",
    )


async def in_process_sessions_mb(engine: Engine, sessions: int) -> Memory:
    """Sessions that live in the host process: weighed in a child that holds many of them."""
    script = MEMORY_CHILD.format(engine=type(engine).__name__, count=sessions)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    if process.returncode:
        raise ProgramFailed(one_line(err.decode(errors="replace").strip().splitlines()[-1]))
    figures: dict[str, Any] = json.loads(out)
    load_mb = figures["load_kb"] / 1024
    return Memory(
        max(figures["per_session_kb"], 0.0) / 1024,
        f"PSS added by {sessions} idle sessions held in one child process, divided by "
        f"{sessions}; loading the engine adds {load_mb:.1f} MB to the host process once",
    )


async def session_memory(engine: Engine, process_sessions: int, in_process: int) -> Memory:
    if engine.in_process:
        return await in_process_sessions_mb(engine, in_process)
    return await process_sessions_mb(engine, process_sessions)


async def bare_idle_mb(count: int) -> float:
    """Baseline of memory: a bare ``python -I -S`` sitting idle, PSS median of ``count``."""
    return await bare_idle_pss(count, "import sys; sys.stdin.read()")
