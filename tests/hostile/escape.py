"""Programs that try to get out: read the host's secrets, reach its network, write its files,
or climb out of Python's own guard rails (frames, ``__subclasses__``, ``gc``, imports, ctypes).

None of these should do any damage to the sandbox itself, so most share one session; the
arena checks after each that no canary appeared anywhere and nothing on the host was reached.
"""

from __future__ import annotations

from hostile import checks
from hostile.table import BROKEN_BRIDGE, OK, Case, Expect, Followup

SECOND = Followup("print('second')", Expect(stdout="second\n"))

SECRETS = [
    Case(
        "environment_dump",
        "secrets",
        """
import os
print(sorted(os.environ.items()))
print("canary variable present:", "$env_name" in os.environ)
""",
        Expect(contains=("canary variable present: False",), lacks=("$env_name",)),
    ),
    Case(
        "proc_environ_of_every_process",
        "secrets",
        """
import os
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    for name in ("environ", "cmdline"):
        try:
            data = open(f"/proc/{pid}/{name}", "rb").read()
            print(pid, name, data.replace(b"\\0", b" ").decode(errors="replace"))
        except OSError as exc:
            print(pid, name, "unreadable", type(exc).__name__)
print("scanned")
""",
        Expect(contains=("scanned",), lacks=("$env_name",)),
    ),
    Case(
        "proc_entries_of_the_host_process",
        "secrets",
        """
import os
for name in ("environ", "cmdline", "mem", "maps", "root/etc/hostname", "cwd"):
    try:
        data = open("/proc/$host_pid/" + name, "rb").read(200)
        print(name, "READ", data[:80])
    except OSError as exc:
        print(name, "unreachable")
""",
        Expect(contains=("environ unreachable", "mem unreachable", "cwd unreachable")),
    ),
    Case(
        "host_canary_files_by_path",
        "secrets",
        """
for path in ["$canary_file", "$home_canary", "/proc/1/root$canary_file",
             "/proc/self/root$home_canary", "/proc/1/cwd/../../..$canary_file"]:
    try:
        print("READ", open(path).read())
    except OSError as exc:
        print("unreadable", type(exc).__name__)
""",
        Expect(lacks=("READ",), contains=("unreadable",)),
    ),
    Case(
        "home_directory_listing",
        "secrets",
        """
import os
home = os.path.expanduser("~")
print("home", home, os.listdir(home))
for path in ("/root", "/home", "/"):
    try:
        print(path, sorted(os.listdir(path)))
    except OSError as exc:
        print(path, "unlistable", type(exc).__name__)
""",
        Expect(contains=("home /workspace",), lacks=("$home_name",)),
    ),
    Case(
        "grep_the_file_system_for_canaries",
        "secrets",
        """
import os, re
canary = re.compile(rb"hostile-canary-[0-9a-f]{32}")
hits, files, budget = [], 0, 30_000_000
roots = ["/tmp", "/workspace", "/root", "/home", "/etc", "/var", "/run", "/srv", "/mnt",
         "/opt", "/media", "/work", "/proc/1/root/tmp", "/dev/shm"]
for root in roots:
    base = root.rstrip("/").count("/")
    for folder, dirs, names in os.walk(root, onerror=lambda e: None):
        if folder.count("/") - base >= 3:
            dirs[:] = []
        for name in names:
            path = os.path.join(folder, name)
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > 1_000_000:
                    continue
                data = open(path, "rb").read()
            except OSError:
                continue
            files += 1
            budget -= len(data)
            if canary.search(data):
                hits.append(path)
            if budget < 0:
                break
print("files read", files > 0, "hits", hits)
""",
        Expect(contains=("hits []",)),
    ),
    Case(
        "memory_of_other_processes",
        "secrets",
        """
import os, re
canary = re.compile(rb"hostile-canary-[0-9a-f]{32}")
me = os.getpid()
hits = 0
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != me]:
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        with open(f"/proc/{pid}/mem", "rb") as mem:
            for line in maps[:50]:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                mem.seek(start)
                if canary.search(mem.read(min(end - start, 1 << 20))):
                    hits += 1
        print(pid, "read")
    except (OSError, ValueError, OverflowError) as exc:
        print(pid, "denied", type(exc).__name__)
print("hits", hits)
""",
        Expect(contains=("hits 0",)),
    ),
    Case(
        "inherited_descriptors",
        "secrets",
        """
import os
for fd in sorted(int(f) for f in os.listdir("/proc/self/fd")):
    try:
        print(fd, os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass
""",
        Expect(lacks=("$tmp_root", "docker.sock", ".py", "pytest")),
    ),
    Case(
        "container_engine_sockets",
        "secrets",
        """
import glob, socket
paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
         *glob.glob("/tmp/*/docker.sock"), *glob.glob("/tmp/*/exec/*/*.sock")]
for path in paths:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print("unreachable", type(exc).__name__)
    finally:
        s.close()
print("tried", len(paths))
""",
        Expect(lacks=("CONNECTED",), contains=("unreachable",)),
    ),
]

NETWORK = [
    Case(
        "tcp_to_the_host_listener",
        "network",
        """
import socket
for host in ("127.0.0.1", "localhost", "0.0.0.0"):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, $port))
        print("CONNECTED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
    finally:
        s.close()
""",
        Expect(lacks=("CONNECTED",), contains=("blocked 127.0.0.1",)),
    ),
    Case(
        "tcp_over_ipv6_loopback",
        "network",
        """
import socket
try:
    s = socket.socket(socket.AF_INET6)
    s.settimeout(2)
    s.connect(("::1", $port))
    print("CONNECTED")
except OSError as exc:
    print("blocked", type(exc).__name__)
""",
        Expect(stdout=None, lacks=("CONNECTED",), contains=("blocked",)),
    ),
    Case(
        "udp_datagrams_to_the_host",
        "network",
        """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    try:
        s.sendto(b"hostile datagram", ("127.0.0.1", $udp_port))
    except OSError as exc:
        print("send failed", type(exc).__name__)
        break
print("sent")
""",
        Expect(contains=("sent",)),
    ),
    Case(
        "dns_lookups",
        "network",
        """
import socket
for name in ("pypi.org", "example.com", "metadata.google.internal"):
    try:
        print("RESOLVED", name, socket.getaddrinfo(name, 443)[0][4])
    except OSError as exc:
        print("no dns", name)
""",
        Expect(lacks=("RESOLVED",), contains=("no dns pypi.org",)),
    ),
    Case(
        "dns_query_to_the_host_listener",
        "network",
        """
import socket, struct
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\\x04pypi\\x03org\\x00" + \\
    struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
try:
    s.sendto(query, ("127.0.0.1", $udp_port))
    print("ANSWER", s.recvfrom(512))
except OSError as exc:
    print("no answer", type(exc).__name__)
""",
        Expect(lacks=("ANSWER",), contains=("no answer",)),
    ),
    Case(
        "only_the_loopback_interface",
        "network",
        """
import socket
print("interfaces", sorted(name for _, name in socket.if_nameindex()))
devices = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
print("devices", sorted(devices))
routes = open("/proc/net/route").read().splitlines()[1:]
print("routes", len(routes))
""",
        Expect(stdout="interfaces ['lo']\ndevices ['lo']\nroutes 0\n"),
    ),
    Case(
        "urllib_to_the_host_listener",
        "network",
        """
import urllib.request
for url in ("http://127.0.0.1:$port/", "http://localhost:$port/secret"):
    try:
        urllib.request.urlopen(url, timeout=2)
        print("REACHED", url)
    except Exception as exc:
        print("blocked", type(exc).__name__)
""",
        Expect(lacks=("REACHED",), contains=("blocked",)),
    ),
    Case(
        "http_client_to_the_host_listener",
        "network",
        """
import http.client
conn = http.client.HTTPConnection("127.0.0.1", $port, timeout=2)
try:
    conn.request("GET", "/")
    print("REACHED", conn.getresponse().status)
except OSError as exc:
    print("blocked", type(exc).__name__)
""",
        Expect(lacks=("REACHED",), contains=("blocked",)),
    ),
    Case(
        "asyncio_connection_to_the_host_listener",
        "network",
        """
try:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", $port), 2)
    print("CONNECTED")
except (OSError, asyncio.TimeoutError) as exc:
    print("blocked", type(exc).__name__)
""",
        Expect(lacks=("CONNECTED",), contains=("blocked",)),
    ),
    Case(
        "abstract_unix_socket_of_the_host",
        "network",
        """
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\\0$abstract")
    print("CONNECTED")
except OSError as exc:
    print("blocked", type(exc).__name__)
""",
        Expect(lacks=("CONNECTED",), contains=("blocked",)),
    ),
    Case(
        "raw_and_packet_sockets",
        "network",
        """
import socket
for family, kind, proto in [(socket.AF_PACKET, socket.SOCK_RAW, 0x0300),
                            (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                            (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)]:
    try:
        socket.socket(family, kind, proto)
        print("OPENED", family, kind)
    except OSError as exc:
        print("denied", type(exc).__name__)
""",
        Expect(lacks=("OPENED",), contains=("denied",)),
    ),
    Case(
        "command_line_http_clients",
        "network",
        """
import shutil, subprocess
for argv in (["curl", "-s", "-m", "2", "http://127.0.0.1:$port/"],
             ["wget", "-q", "-T", "2", "-O", "-", "http://127.0.0.1:$port/"]):
    if shutil.which(argv[0]) is None:
        print("absent", argv[0])
        continue
    done = subprocess.run(argv, capture_output=True, timeout=10)
    print("REACHED" if done.returncode == 0 else "blocked", argv[0])
""",
        Expect(lacks=("REACHED",)),
    ),
]

FILESYSTEM = [
    Case(
        "write_outside_the_working_directory",
        "filesystem",
        """
for path in ["/$escape", "/etc/$escape", "/usr/$escape", "/usr/bin/$escape", "/opt/$escape",
             "/opt/openptc/$escape", "/root/$escape", "/proc/sys/kernel/hostname",
             "/sys/kernel/mm/transparent_hugepage/enabled", "$canary_file", "$home_canary"]:
    try:
        with open(path, "a") as f:
            f.write("hostile")
        print("WROTE", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
""",
        Expect(lacks=("WROTE",), contains=("denied",)),
    ),
    Case(
        "private_tmp_and_workspace",
        "filesystem",
        """
import os
for folder in ("/tmp", "/workspace", "/dev/shm"):
    try:
        open(os.path.join(folder, "$escape"), "w").write("hostile")
        print("wrote", folder)
    except OSError as exc:
        print("denied", folder, type(exc).__name__)
""",
        Expect(contains=("wrote /tmp", "wrote /workspace")),
    ),
    Case(
        "symlinks_and_hard_links_out",
        "filesystem",
        """
import os
os.makedirs("/workspace/links", exist_ok=True)
for target, name in [("/usr/lib", "lib"), ("$canary_file", "canary"), ("/", "root")]:
    link = f"/workspace/links/{name}"
    if not os.path.lexists(link):
        os.symlink(target, link)
for path in ["/workspace/links/lib/$escape", "/workspace/links/root/etc/$escape"]:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
try:
    print("READ", open("/workspace/links/canary").read())
except OSError as exc:
    print("unreadable", type(exc).__name__)
try:
    os.link("/usr/bin/env", "/workspace/links/env")
    print("LINKED")
except OSError as exc:
    print("no hard link", type(exc).__name__)
""",
        Expect(lacks=("WROTE", "READ", "LINKED"), contains=("unreadable",)),
    ),
    Case(
        "proc_root_paths_out",
        "filesystem",
        """
for path in ["/proc/self/root/usr/$escape", "/proc/1/root/etc/$escape",
             "/proc/1/cwd/$escape", "/proc/self/root/tmp/../root/$escape"]:
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
""",
        Expect(lacks=("wrote /proc/self/root/usr", "wrote /proc/1/root/etc")),
    ),
    Case(
        "mount_chroot_and_devices",
        "filesystem",
        """
import ctypes, os, stat
libc = ctypes.CDLL(None, use_errno=True)
print("mount", libc.mount(b"none", b"/usr", b"tmpfs", 0, None), ctypes.get_errno() != 0)
try:
    os.chroot("/tmp")
    print("CHROOTED")
except OSError as exc:
    print("no chroot", type(exc).__name__)
try:
    os.mknod("/workspace/disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0))
    print("MKNOD")
except OSError as exc:
    print("no mknod", type(exc).__name__)
for device in ("/dev/sda", "/dev/vda", "/dev/mem", "/dev/kmsg"):
    try:
        open(device, "rb").read(1)
        print("OPENED", device)
    except OSError as exc:
        print("no", device)
""",
        Expect(lacks=("CHROOTED", "MKNOD", "OPENED"), contains=("mount -1 True",)),
    ),
    Case(
        "change_modes_and_owners_of_system_files",
        "filesystem",
        """
import os, sys
for path in (sys.executable, "/usr/bin/env", "/opt/openptc"):
    for what, action in (("chmod", lambda p: os.chmod(p, 0o777)),
                         ("chown", lambda p: os.chown(p, os.getuid(), os.getgid()))):
        try:
            action(path)
            print("CHANGED", what, path)
        except OSError as exc:
            print("denied", what)
""",
        Expect(lacks=("CHANGED",), contains=("denied chmod",)),
    ),
    Case(
        "overwrite_the_runtime",
        "filesystem",
        """
import glob, os, sys
targets = glob.glob("/opt/openptc/*") + [m.__file__ for m in list(sys.modules.values())
                                          if getattr(m, "__file__", None)][:5]
for path in targets:
    try:
        with open(path, "r+b") as f:
            f.write(b"hostile")
        print("OVERWROTE", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
print("tried", len(targets) > 0)
""",
        Expect(lacks=("OVERWROTE",), contains=("tried True",)),
        placement="fresh",
        followup=SECOND,
    ),
]

CTYPES = [
    Case(
        "segfault_through_ctypes",
        "ctypes",
        "import ctypes\nprint('before', flush=True)\nctypes.string_at(0)\n",
        Expect(outcomes=frozenset({"crashed"})),
        placement="fresh",
        followup=Followup("print('second')", Expect(stdout="second\n")),
    ),
    Case(
        "become_root",
        "ctypes",
        """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print("setuid", libc.setuid(0), "setgid", libc.setgid(0))
for call in (lambda: os.setuid(0), lambda: os.setresuid(0, 0, 0), lambda: os.setgroups([0])):
    try:
        call()
        print("ROOT")
    except OSError as exc:
        print("denied", type(exc).__name__)
print("uid", os.getuid() != 0, os.geteuid() != 0)
""",
        Expect(lacks=("ROOT", "setuid 0"), contains=("uid True True",)),
    ),
    Case(
        "new_user_namespace",
        "ctypes",
        """
import ctypes, os
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    result = [f"unshare {libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)}"]
    for path in ("$canary_file", "$home_canary"):
        try:
            result.append("READ " + open(path).read())
        except OSError:
            result.append("unreadable")
    result.append(f"mount {libc.mount(b'none', b'/usr', b'tmpfs', 0, None)}")
    os.write(write, " ".join(result).encode())
    os._exit(0)
os.close(write)
os.waitpid(pid, 0)
print(os.read(read, 4096).decode())
""",
        Expect(lacks=("READ",), contains=("unreadable unreadable",)),
    ),
    Case(
        "ptrace_and_process_memory",
        "ctypes",
        """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
targets = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
for pid in targets + [$host_pid]:
    attached = libc.ptrace(PTRACE_ATTACH, pid, None, None)
    print(pid, "ATTACHED" if attached == 0 else "denied")
""",
        Expect(lacks=("ATTACHED",)),
    ),
    Case(
        "libc_write_to_the_bridge",
        "ctypes",
        """
import ctypes, json, sys, time
out_fd = json.loads(sys.argv[1])["out_fd"]
libc = ctypes.CDLL(None)
line = b"this is not a bridge message\\n"
libc.write(out_fd, line, len(line))
time.sleep(2)
print("not reached")
""",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",), lacks=("not reached",)),
        placement="fresh",
        followup=SECOND,
    ),
]

INTROSPECTION = [
    Case(
        "frames_reach_the_runtime_and_forge_its_done",
        "introspection",
        """
import sys
frame, runtime, message = sys._getframe(), None, None
while frame is not None:
    if "message" in frame.f_locals and "self" in frame.f_locals:
        runtime, message = frame.f_locals["self"], frame.f_locals["message"]
    frame = frame.f_back
runtime.send({"type": "done", "id": message["id"], "stdout": "forged\\n", "stderr": "",
              "stdout_truncated": False, "error": None, "notices": []})
import time
time.sleep(0.3)  # the real end comes after the host has moved on to the next execution
print("real")
""",
        Expect(outcomes=frozenset({"ok", "bridge"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "frames_read_every_variable",
        "introspection",
        """
import sys
frame, count = sys._getframe(), 0
while frame is not None:
    for name, value in list(frame.f_locals.items()):
        print(frame.f_code.co_name, name, repr(value)[:300])
        count += 1
    frame = frame.f_back
print("locals", count > 0)
""",
        Expect(contains=("locals True",), lacks=("$env_name",)),
    ),
    Case(
        "subclasses_reach_os_system",
        "introspection",
        """
wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "_wrap_close"][0]
system = wrap.__init__.__globals__["system"]
status = system("id; cat /proc/*/environ; cat $canary_file $home_canary")
print("ran", status != 0)
""",
        Expect(contains=("ran True",), lacks=("uid=0(",)),
    ),
    Case(
        "subclasses_reach_the_file_loader",
        "introspection",
        """
loader = [c for c in object.__subclasses__() if c.__name__ == "FileLoader"]
loader = loader[0] if loader else __import__("importlib").machinery.SourceFileLoader
for path in ("$canary_file", "$home_canary"):
    try:
        print("READ", loader("x", path).get_data(path))
    except OSError as exc:
        print("unreadable", type(exc).__name__)
""",
        Expect(lacks=("READ",), contains=("unreadable",)),
    ),
    Case(
        "gc_scan_for_secrets",
        "introspection",
        """
import gc, re
canary = re.compile("hostile-canary-[0-9a-f]{32}")
found = 0
for holder in gc.get_objects():
    if isinstance(holder, dict):
        values = list(holder.values())
    elif isinstance(holder, (list, tuple)):
        values = holder
    else:
        continue
    found += sum(1 for v in values if isinstance(v, str) and canary.search(v))
print("found", found)
""",
        Expect(stdout="found 0\n"),
    ),
    Case(
        "gc_turns_the_runtime_bridge_to_stdout",
        "introspection",
        """
import gc
runtimes = [o for o in gc.get_objects() if type(o).__name__ == "Runtime"]
for runtime in runtimes:
    runtime.out_fd = 1
print("redirected", len(runtimes))
""",
        Expect(outcomes=frozenset({"timeout", "bridge", "crashed"})),
        placement="fresh",
        timeout_s=1.5,
        followup=SECOND,
    ),
    Case(
        "gc_asks_the_runtime_to_shut_down",
        "introspection",
        """
import gc
print("before", flush=True)
for runtime in [o for o in gc.get_objects() if type(o).__name__ == "Runtime"]:
    runtime.dispatch({"type": "shutdown"})
""",
        Expect(outcomes=frozenset({"ok", "crashed", "exception"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "stop_the_event_loop",
        "introspection",
        "asyncio.get_running_loop().stop()\nawait asyncio.sleep(0.5)\nprint('after stop')\n",
        Expect(outcomes=frozenset({"ok", "crashed", "exception", "bridge"})),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "lift_the_output_cap_in_the_sandbox",
        "introspection",
        "import sys\nsys.stdout.cap = 10 ** 9\nprint('x' * 20_000_000)\n",
        Expect(outcomes=frozenset({"ok", "bridge"})),
        placement="fresh",
        check=checks.output_capped_by_the_host,
        followup=SECOND,
        notes="the output cap is enforced inside the sandbox only: the host must enforce it too",
    ),
]

IMPORTS = [
    Case(
        "import_the_host_package",
        "imports",
        """
import sys
sys.path[:0] = ["/work/main/src", "/root", "$tmp_root", "/usr/lib/python3/dist-packages"]
for name in ("openptc", "pytest", "docker", "boto3"):
    try:
        __import__(name)
        print("IMPORTED", name)
    except ImportError:
        print("absent", name)
""",
        Expect(lacks=("IMPORTED openptc", "IMPORTED pytest", "IMPORTED boto3")),
    ),
    Case(
        "poison_the_runtime_json_encoder",
        "imports",
        "import json\njson.dumps = lambda *args, **kwargs: 'not json'\nprint('poisoned')\n",
        Expect(outcomes=BROKEN_BRIDGE, message=("bridge",)),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "swap_modules_the_runtime_uses",
        "imports",
        """
import sys, types
fake = types.ModuleType("os")
fake.write = lambda fd, data: len(data)
sys.modules["os"] = fake
sys.modules["json"] = types.ModuleType("json")
print("swapped")
""",
        Expect(outcomes=OK, stdout="swapped\n"),
        placement="fresh",
        followup=SECOND,
    ),
    Case(
        "recursion_limit_lifted_to_a_stack_overflow",
        "imports",
        """
import sys
sys.setrecursionlimit(10 ** 8)
nested = []
for _ in range(500_000):
    nested = [nested]
print(len(repr(nested)))
""",
        # The C stack overflows after a few seconds of recursion, or the deadline comes first.
        Expect(outcomes=frozenset({"crashed", "exception", "memory", "timeout"})),
        placement="fresh",
        followup=SECOND,
    ),
]

CASES = SECRETS + NETWORK + FILESYSTEM + CTYPES + INTROSPECTION + IMPORTS
