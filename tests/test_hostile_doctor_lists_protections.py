"""``ptc doctor`` lists every protection a sandbox has on this machine, and those it lacks."""

from __future__ import annotations

from typing import Any

from openptc.doctor import cgroup_status, diagnose, protections
from openptc.sandbox.base import Isolation, Limits

NAMES = [
    "namespaces",
    "read-only root",
    "dedicated uid",
    "no capabilities",
    "no new privileges",
    "rlimits",
    "seccomp filter",
    "cgroup limits",
]
INSIDE_BUBBLEWRAP: dict[str, Any] = {
    "seccomp": "0",
    "no_new_privs": "1",
    "cap_eff": "0000000000000000",
    "limits": {
        "RLIMIT_AS": 512 * 1024 * 1024,
        "RLIMIT_CPU": 302,
        "RLIMIT_FSIZE": 16 * 1024 * 1024,
        "RLIMIT_NOFILE": 256,
        "RLIMIT_NPROC": 32,
    },
}


async def test_the_report_lists_each_protection_after_the_live_checks() -> None:
    report = await diagnose()
    listed = [c.name.removeprefix("protection: ") for c in report.protections]
    assert listed == NAMES
    assert [c.kind for c in report.checks[: len(report.checks) - len(NAMES)]] == ["check"] * 6
    seccomp = next(c for c in report.protections if c.name.endswith("seccomp filter"))
    assert not seccomp.passed and seccomp.detail.startswith("missing: none")
    if report.isolation.level == "bubblewrap":
        active = {c.name.removeprefix("protection: ") for c in report.protections if c.passed}
        assert {"namespaces", "read-only root", "no capabilities", "rlimits"} <= active
    # A protection not there yet is reported, and does not make a sound sandbox fail.
    assert report.strong == (
        report.isolation.level == "bubblewrap"
        and all(c.passed for c in report.checks if c.kind == "check")
    )


def test_bubblewrap_without_a_cgroup_lacks_seccomp_and_cgroup_limits() -> None:
    isolation = Isolation("bubblewrap", ("pid", "net"), dedicated_uid=True, read_only_root=True)
    found = {p.name: p for p in protections(isolation, Limits(), INSIDE_BUBBLEWRAP)}
    assert list(found) == NAMES
    assert {n for n, p in found.items() if p.status != "active"} == {
        "seccomp filter",
        "cgroup limits",
    }
    assert found["rlimits"].detail == (
        "address space 512MB, CPU 302s, file size 16MB, open files 256, processes 32"
    )
    assert found["cgroup limits"].status == "not available"


def test_a_bare_process_says_what_it_lacks() -> None:
    probe = {**INSIDE_BUBBLEWRAP, "no_new_privs": "0", "cap_eff": "000001ffffffffff"}
    probe["limits"] = {**INSIDE_BUBBLEWRAP["limits"], "RLIMIT_NPROC": -1}
    found = {p.name: p for p in protections(Isolation("process"), Limits(), probe)}
    missing = {n for n, p in found.items() if p.status == "missing"}
    assert missing == {
        "namespaces",
        "read-only root",
        "dedicated uid",
        "no capabilities",
        "no new privileges",
        "seccomp filter",
    }
    assert found["rlimits"].detail.endswith("(not set: processes)")


def test_the_cgroup_hook_reports_what_the_isolation_carries() -> None:
    assert cgroup_status(Isolation("bubblewrap")).status == "not available"
    limited = cgroup_status(Isolation("bubblewrap", cgroup="cgroup v1 (memory, pids)"))
    assert (limited.status, limited.detail) == ("active", "cgroup v1 (memory, pids)")
    docker = Isolation("docker", cgroup="the container's cgroup (memory, pids)")
    assert cgroup_status(docker).status == "active"
