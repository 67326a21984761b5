# The sandbox server (`ptc sandbox-server`): runs programs for remote orchestrators; the tools,
# and their secrets, stay with the orchestrators. Build from the repository root:
#
#   docker build -f deploy/sandbox-server.Dockerfile -t openptc/sandbox-server:0.1.0 .
#
# BASE: a Python image with pip and venv (the official python:3.11-slim or newer, or a mirror).
# At run time nothing needs a shell, and the image runs with a read-only root file system as
# long as /tmp is writable (a tmpfs in compose, an emptyDir in Kubernetes, a bind mount on ECS).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/openptc
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/openptc/bin/pip install "/src[server]"

FROM ${BASE}
# bubblewrap gives each sandbox its own namespaces where the pod's runtime allows it; where it
# does not (the default seccomp profile refuses new user namespaces), the server falls back to a
# process with rlimits and a scrubbed environment and says so, and the pod is the boundary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 ptc \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin ptc \
    && chmod 1777 /tmp
COPY --from=build /opt/openptc /opt/openptc
ENV PATH=/opt/openptc/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# On Fargate a bind mount at a VOLUME path starts from the image's directory (mode 1777 here),
# so the non-root user can write to it; elsewhere the orchestrator mounts its own /tmp.
VOLUME ["/tmp"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8090
ENTRYPOINT ["ptc"]
CMD ["sandbox-server", "--host", "0.0.0.0", "--port", "8090"]
