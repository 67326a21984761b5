"""What a client is told when its container cannot be had: the limit, and the 404s.

A replica often cannot know why a container is missing, so the 404 lists what may have
happened (and what this proxy saw of its store) instead of guessing one cause.
"""

from __future__ import annotations

from openptc.proxy.errors import ApiError, not_found

START_AFRESH = "Leave out `container` to start a new one"


def limit_reached(limit: int) -> ApiError:
    return ApiError(
        "rate_limit_error",
        f"this API key already has its limit of {limit} containers in use (running a request, "
        "or paused waiting for tool results); answer or finish one of them, or send the "
        "request again when one is done",
    )


def unknown_container(
    container_id: str, *, idle_s: float, in_memory: bool, seen: str | None
) -> ApiError:
    causes = [f"it expired ({idle_s:g} s after its last use)"]
    if in_memory:
        causes.append(
            "this proxy restarted since (it keeps containers in memory; set redis_url to keep "
            "them over restarts)"
        )
    else:
        causes += [
            "the container store lost it (a Redis restarted without persistence, or flushed)",
            "it was made through a proxy that uses another container store",
        ]
    causes.append("the id is wrong or belongs to another API key")
    return not_found(
        f"container '{container_id}' was not found. It may be that "
        + "; or ".join(causes)
        + "."
        + (f" This proxy saw that {seen}." if seen else "")
        + f" {START_AFRESH}; a program paused in it cannot be resumed."
    )


def lost_container(container_id: str) -> ApiError:
    """The store no longer has a container this replica knows had not expired."""
    return not_found(
        f"container '{container_id}' is gone from the container store although it had not "
        "expired: the store lost its data (a Redis restarted without persistence, flushed, or "
        "evicting keys under memory pressure). Its programs and variables cannot be recovered. "
        f"{START_AFRESH}."
    )


def expired_container(container_id: str, idle_s: float) -> ApiError:
    return not_found(
        f"container '{container_id}' expired: it was not used for {idle_s:g} s. {START_AFRESH}."
    )
