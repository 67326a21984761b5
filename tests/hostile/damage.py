"""Programs that try to break their sandbox or the machine: bombs of every kind, endless output,
signals, abrupt exits, sleeping past the deadline.

Each runs in a fresh session (or a sandbox of its own), and most are followed by a second
program in the same session: the session must be whole again, or restarted and say so.
"""

from __future__ import annotations

from hostile import checks
from hostile.table import ANY_END, Case, Expect, Followup
from openptc.sandbox.base import Limits

SECOND = Followup("print('second')", Expect(stdout="second\n"))

# The session after a damaging program: a subprocess still starts, and nothing the earlier
# program started is left (no zombie, no process, no thread). The sandbox's own processes (this
# interpreter and its ancestors up to the namespace's init) are not the program's.
CLEAN_SESSION = Followup(
    """
import os, subprocess, sys, threading
child = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True)
def stat(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])
ours, pid = {os.getpid()}, os.getpid()
while pid > 1:
    pid = stat(pid)[1]
    ours.add(pid)
zombies = others = 0
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) not in ours:
        try:
            state, _ = stat(entry)
        except OSError:
            continue
        zombies += state == "Z"
        others += state != "Z"
print("subprocess", child.stdout.strip(), "zombies", zombies, "others", others,
      "threads", threading.active_count())
""",
    Expect(stdout="subprocess 1 zombies 0 others 0 threads 1\n"),
)

BOMBS = [
    Case(
        "fork_bomb",
        "bombs",
        """
import os, time
children = 0
try:
    while True:
        pid = os.fork()
        if pid == 0:
            if children % 2:
                os._exit(0)  # dies at once, never reaped: a zombie
            time.sleep(1000)
            os._exit(0)
        children += 1
except OSError as exc:
    print("stopped", type(exc).__name__, children > 0)
""",
        Expect(contains=("stopped BlockingIOError True",)),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
    Case(
        "unreaped_children",
        "bombs",
        """
import os
for _ in range(8):
    if os.fork() == 0:
        os._exit(0)
print("left 8 children unreaped")
""",
        Expect(stdout="left 8 children unreaped\n"),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
    Case(
        "one_huge_allocation",
        "bombs",
        "blob = bytearray(2 * 1024 ** 3)\n",
        Expect(outcomes=frozenset({"memory"}), message=("memory",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "memory_growing_until_it_fails",
        "bombs",
        """
blocks = []
while True:
    block = bytearray(8 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    blocks.append(block)
""",
        Expect(outcomes=frozenset({"memory"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "string_multiplication_bomb",
        "bombs",
        "text = 'x' * (10 ** 10)\n",
        Expect(outcomes=frozenset({"memory"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "memory_across_processes",
        "bombs",
        """
import os
report_r, report_w = os.pipe()
release_r, release_w = os.pipe()
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(release_w)
        try:
            block = bytearray(200 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            os.write(report_w, b"%d\\n" % os.getpid())
        except MemoryError:
            os.write(report_w, b"0\\n")
        os.close(report_w)
        os.read(release_r, 1)  # hold the memory until every child has reported
        os._exit(0)
    children.append(pid)
os.close(report_w)
os.close(release_r)
reports = b""
while chunk := os.read(report_r, 16):
    reports += chunk
# A child the kernel killed for the limit after it reported held its memory only until the
# next one took it: what counts is how many hold it now, together.
holding = [int(p) for p in reports.split() if p != b"0" and os.waitpid(int(p), os.WNOHANG)[0] == 0]
os.close(release_w)
for pid in children:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
print("succeeded", len(holding))
""",
        Expect(outcomes=frozenset({"ok", "memory"})),
        placement="own",  # the same memory limit, more time: 800 MB may be touched first
        limits=Limits(timeout_s=30, memory_mb=256, processes=32),
        check=checks.memory_limit_holds_for_the_whole_sandbox,
        followup=CLEAN_SESSION,
    ),
    Case(
        "busy_loop",
        "bombs",
        "while True:\n    pass\n",
        Expect(outcomes=frozenset({"timeout"}), message=("did not finish",)),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "cpu_budget_spent",
        "bombs",
        "while True:\n    pass\n",
        Expect(outcomes=frozenset({"cpu"}), message=("CPU",)),
        placement="own",
        limits=Limits(timeout_s=20, cpu_s=1, memory_mb=256),
        followup=SECOND,
    ),
    Case(
        "disk_filled",
        "bombs",
        """
import os
written = 0
try:
    for i in range(1000):
        with open(f"/workspace/fill{i}", "wb") as f:
            f.write(b"x" * (1024 * 1024))
        written += 1
    print("NEVER FULL")
except OSError as exc:
    print("full", exc.strerror, written < 1000)
""",
        Expect(contains=("full No space left on device True",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "file_larger_than_allowed",
        "bombs",
        """
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(64):
            f.write(b"x" * (1024 * 1024))
    print("NO LIMIT")
except OSError as exc:
    print("stopped", exc.strerror)
""",
        Expect(contains=("stopped",), lacks=("NO LIMIT",)),
        placement="fresh",
    ),
    Case(
        "thread_bomb",
        "bombs",
        """
import threading
gate, started = threading.Event(), 0
try:
    for _ in range(100_000):
        threading.Thread(target=gate.wait, daemon=True).start()
        started += 1
except (RuntimeError, MemoryError) as exc:
    print("stopped", type(exc).__name__, started > 0)
""",
        Expect(contains=("stopped",)),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
    Case(
        "threads_left_running",
        "bombs",
        """
import threading, time
for _ in range(5):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
print("threads", threading.active_count())
""",
        Expect(stdout="threads 6\n"),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
    Case(
        "double_forked_background_process",
        "bombs",
        """
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)
    os._exit(0)
os.waitpid(pid, 0)
print("daemon started")
""",
        Expect(stdout="daemon started\n"),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
    Case(
        "descriptors_exhausted",
        "bombs",
        """
def exhaust():
    files = []
    try:
        while True:
            files.append(open("/dev/null"))
    except OSError as exc:
        return exc.strerror, len(files) > 10
print(*exhaust())
""",
        Expect(contains=("Too many open files True",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "recursion_without_end",
        "bombs",
        "def dive(n):\n    return dive(n + 1)\ndive(0)\n",
        Expect(outcomes=frozenset({"exception"}), message=("RecursionError",)),
    ),
]

OUTPUT = [
    Case(
        "endless_printing",
        "output",
        "while True:\n    print('x' * 1000)\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        check=checks.stray_output_capped,
        followup=SECOND,
    ),
    Case(
        "fifty_megabytes_printed",
        "output",
        "print('y' * 50_000_000)\nprint('end')\n",
        Expect(),
        placement="fresh",
        check=checks.genuine_output_capped,
        followup=SECOND,
    ),
    Case(
        "wide_characters_printed",
        "output",
        "for _ in range(100):\n    print('\\U0001f600' * 10_000)\n",
        Expect(),
        check=checks.genuine_output_capped,
    ),
    Case(
        "endless_writes_to_the_real_stdout",
        "output",
        "import os\nwhile True:\n    os.write(1, b'z' * 65536)\n    os.write(2, b'e' * 65536)\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        check=checks.stray_output_capped,
        followup=SECOND,
    ),
    Case(
        "stderr_flood",
        "output",
        "import sys\nfor _ in range(50):\n    print('e' * 1_000_000, file=sys.stderr)\n",
        Expect(),
        check=checks.stray_output_capped,
    ),
    Case(
        "children_flood_the_inherited_output",
        "output",
        """
import subprocess, sys
subprocess.run([sys.executable, "-c", "import sys; sys.stdout.write('c' * 20_000_000)"])
print("done")
""",
        Expect(stdout="done\n"),
        check=checks.stray_output_capped,
    ),
]

SIGNALS = [
    Case(
        "kill_the_parent",
        "signals",
        """
import os, signal
parent = os.getppid()
if parent > 1:
    try:
        os.kill(parent, signal.SIGKILL)
        print("KILLED", parent)
    except OSError as exc:
        print("denied", type(exc).__name__)
else:
    print("no parent to kill", parent)
""",
        Expect(lacks=("KILLED",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "kill_the_process_group",
        "signals",
        """
import os, signal
print("before", flush=True)
for group in {os.getpgrp(), 0}:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError as exc:
        print("no group", group, type(exc).__name__)
""",
        Expect(outcomes=frozenset({"ok", "crashed"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "kill_every_process_it_can",
        "signals",
        """
import os, signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100)"])
os.kill(-1, signal.SIGKILL)
print("survived", child.wait())
""",
        Expect(outcomes=frozenset({"ok", "crashed"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "signal_host_processes_by_number",
        "signals",
        """
import os, signal
for pid in ($host_pid, $host_pid + 1, 1):
    try:
        os.kill(pid, 0)
        print(pid, "visible")
    except ProcessLookupError:
        print(pid, "not found")
    except PermissionError:
        print(pid, "denied")
try:
    os.kill($host_pid, signal.SIGTERM)
    print("SIGNALLED THE HOST")
except OSError as exc:
    print("host unreachable", type(exc).__name__)
""",
        Expect(lacks=("SIGNALLED",), contains=("host unreachable",)),
    ),
    Case(
        "stop_itself",
        "signals",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\nprint('resumed')\n",
        Expect(outcomes=frozenset({"timeout"})),
        # In a container the runtime is pid 1, which the kernel spares signals it sends itself.
        docker=Expect(stdout="resumed\n"),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "ignore_every_polite_signal",
        "signals",
        """
import signal, time
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
    signal.signal(sig, signal.SIG_IGN)
while True:
    time.sleep(0.05)
""",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "inject_into_the_terminal",
        "signals",
        """
import fcntl, os, termios
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"x")
        print("INJECTED", fd)
    except OSError as exc:
        print("denied", fd)
try:
    os.open("/dev/tty", os.O_RDWR)
    print("OPENED TTY")
except OSError:
    print("no tty")
""",
        Expect(lacks=("INJECTED", "OPENED TTY"), contains=("no tty",)),
    ),
]

EXITS = [
    Case(
        "os_exit_zero",
        "exit",
        "import os\nprint('before', flush=True)\nos._exit(0)\n",
        Expect(outcomes=ANY_END),
        placement="fresh",
        check=checks.exit_zero_keeps_output,
        followup=SECOND,
    ),
    Case(
        "os_exit_three",
        "exit",
        "import os\nprint('before', flush=True)\nos._exit(3)\n",
        Expect(outcomes=frozenset({"crashed", "exception"})),
        placement="fresh",
        check=checks.exit_status_is_the_programs,
        followup=SECOND,
    ),
    Case(
        "sys_exit_zero",
        "exit",
        "import sys\nprint('a')\nsys.exit(0)\nprint('b')\n",
        Expect(stdout="a\n"),
    ),
    Case(
        "sys_exit_with_a_code",
        "exit",
        "import sys\nsys.exit(7)\n",
        Expect(outcomes=frozenset({"exception"}), message=("SystemExit",)),
    ),
    Case(
        "abort",
        "exit",
        "import os\nos.abort()\n",
        Expect(outcomes=frozenset({"crashed"})),
        placement="fresh",
        followup=SECOND,
    ),
]

DEADLINE = [
    Case(
        "blocking_sleep",
        "deadline",
        "import time\ntime.sleep(600)\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "async_sleep",
        "deadline",
        "await asyncio.sleep(600)\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "sleep_again_in_finally",
        "deadline",
        "import time\ntry:\n    time.sleep(600)\nfinally:\n    time.sleep(600)\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        followup=SECOND,
    ),
    Case(
        "tool_that_never_answers",
        "deadline",
        "await hang()\n",
        Expect(outcomes=frozenset({"timeout"})),
        placement="fresh",
        timeout_s=1,
        check=checks.hung_tool_is_cancelled,
        followup=SECOND,
    ),
    Case(
        "child_holding_the_output_pipe",
        "deadline",
        """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
print("done")
""",
        Expect(stdout="done\n"),
        placement="fresh",
        followup=CLEAN_SESSION,
    ),
]

CASES = BOMBS + OUTPUT + SIGNALS + EXITS + DEADLINE
