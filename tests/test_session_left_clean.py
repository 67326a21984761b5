"""An execution leaves its session as it found it: children reaped, strays stopped, and the
program's own exit status and output reported when it ends the interpreter itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openptc.sandbox.base import Limits
from openptc.sandbox.local import LocalSandbox, LocalSession

OTHER_PROCESSES = """
import os
me = os.getpid()
others = []
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) not in (1, me):
        state = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[0]
        others.append(state)
print(others)
"""


@pytest.fixture
async def sandbox() -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(Limits(timeout_s=15, processes=16), pool_size=1) as sandbox:
        yield sandbox


@pytest.fixture
async def session(sandbox: LocalSandbox) -> LocalSession:
    return await sandbox.open_session()


async def test_a_double_forked_background_process_is_stopped_when_the_run_ends(
    session: LocalSession,
) -> None:
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)
    os._exit(0)
print("started")
"""
    result = await session.execute(code)
    assert result.stdout == "started\n"
    assert any("were stopped" in n for n in result.notices), result.notices
    assert (await session.execute(OTHER_PROCESSES)).stdout == "[]\n"


async def test_after_a_fork_bomb_the_next_run_can_start_processes(session: LocalSession) -> None:
    bomb = """
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(1000)
        children += 1
except OSError as exc:
    print("stopped after", children, type(exc).__name__)
"""
    result = await session.execute(bomb)
    assert result.stdout.startswith("stopped after") and "BlockingIOError" in result.stdout
    after = await session.execute(
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'print(6*7)'], capture_output=True,"
        " text=True).stdout)" + OTHER_PROCESSES
    )
    assert after.stdout == "42\n\n[]\n", after


async def test_children_that_ended_unwaited_are_reaped(session: LocalSession) -> None:
    result = await session.execute(
        "import os\nfor _ in range(10):\n    if os.fork() == 0:\n        os._exit(0)\n"
    )
    assert result.error is None
    assert (await session.execute(OTHER_PROCESSES)).stdout == "[]\n"  # no zombie 'Z' left


async def test_a_thread_left_running_restarts_the_interpreter_and_says_so(
    session: LocalSession,
) -> None:
    code = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\nprint('ok')"
    )
    result = await session.execute(code)
    assert result.stdout == "ok\n"
    assert any("thread(s) the program started" in n for n in result.notices)
    after = await session.execute("import threading\nprint(threading.active_count())")
    assert after.stdout == "1\n" and after.notices  # a fresh interpreter, announced


async def test_threads_from_asyncio_to_thread_that_finished_keep_the_session(
    session: LocalSession,
) -> None:
    await session.execute("x = 1")
    result = await session.execute("print(await asyncio.to_thread(sum, [1, 2]))")
    assert result.stdout == "3\n" and result.notices == ()
    assert (await session.execute("print(x)")).stdout == "1\n"  # not restarted


async def test_os_exit_zero_keeps_what_was_printed(session: LocalSession) -> None:
    result = await session.execute("import os\nprint('before')\nos._exit(0)\nprint('never')")
    assert result.stdout == "before\n"
    assert result.error is None
    assert any("os._exit(0)" in n for n in result.notices)
    assert (await session.execute("print('next')")).stdout == "next\n"


async def test_os_exit_reports_the_programs_own_status(session: LocalSession) -> None:
    result = await session.execute("import os\nprint('partial')\nos._exit(3)")
    assert result.stdout == "partial\n"
    assert result.error is not None and "exit status 3" in result.error.message


async def test_an_exit_below_os_exit_reports_its_own_status_not_the_kill(
    session: LocalSession,
) -> None:
    result = await session.execute("import ctypes\nctypes.CDLL(None)._exit(5)")
    assert result.error is not None and result.error.kind == "crashed"
    assert "exit status 5" in result.error.message
