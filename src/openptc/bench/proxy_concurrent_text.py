"""The concurrent text phase of ``ptc bench proxy``: bursts of text-only requests all at once,
one connection each, the proxy and the bare HTTP endpoint in turn.
"""

from __future__ import annotations

from openptc.bench.proxy_figures import Comparison, Progress
from openptc.bench.proxy_requests import Burst, burst, clients, summarise_bursts
from openptc.bench.proxy_server import CpuMeter, Server
from openptc.bench.proxy_workload import TEXT_BODY, check_text


async def concurrent_text(
    proxy_server: Server, bare_server: Server, count: int, bursts: int, progress: Progress
) -> Comparison:
    """``count`` text-only requests at once, ``bursts`` times, proxy and bare interleaved.

    The first burst of each opens the connections; it is reported apart and its errors count.
    """
    proxy, bare = proxy_server.url, bare_server.url
    ours: list[Burst] = []
    floor: list[Burst] = []
    async with clients(count) as proxy_clients, clients(count) as bare_clients:
        first_proxy = await burst(proxy_clients, proxy, TEXT_BODY, check_text)
        first_bare = await burst(bare_clients, bare, TEXT_BODY, check_text)
        proxy_cpu, bare_cpu = CpuMeter(proxy_server), CpuMeter(bare_server)
        for _ in range(bursts):
            ours.append(await burst(proxy_clients, proxy, TEXT_BODY, check_text))
            floor.append(await burst(bare_clients, bare, TEXT_BODY, check_text))
        cpu = {
            "proxy": proxy_cpu.per_request(count * bursts),
            "bare_http": bare_cpu.per_request(count * bursts),
        }
    mine, base = summarise_bursts(ours, count), summarise_bursts(floor, count)
    errors = mine["errors"] + len(first_proxy.errors)
    progress(
        f"{count} concurrent text requests: {mine['wall_ms']:.0f} ms wall, "
        f"{mine['throughput_per_s']:.0f} req/s, {errors} errors "
        f"(bare HTTP {base['wall_ms']:.0f} ms, {base['throughput_per_s']:.0f} req/s)"
    )
    return Comparison(
        f"concurrent_{count}_text_wall",
        mine["wall_ms"],
        base["wall_ms"],
        "ms",
        f"{count} concurrent requests to the bare endpoint",
        "0 errors",
        errors == 0,
        {
            "concurrency": count,
            "bursts": bursts,
            "errors": errors,
            "proxy": mine,
            "bare_http": base,
            "first_burst_new_connections": {
                "proxy_wall_ms": first_proxy.wall_ms,
                "proxy_errors": len(first_proxy.errors),
                "bare_http_wall_ms": first_bare.wall_ms,
                "bare_http_errors": len(first_bare.errors),
                "error_samples": first_proxy.errors[:5],
            },
            "throughput_ratio": mine["throughput_per_s"] / base["throughput_per_s"],
            "server_cpu_per_request_ms": cpu,
        },
    )
