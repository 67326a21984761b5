# The Anthropic-compatible proxy (`ptc serve`). Build from the repository root:
#
#   docker build -f deploy/proxy.Dockerfile -t openptc/proxy:0.1.0 .
#
# BASE: a Python image with pip and venv (the official python:3.11-slim or newer, or a mirror).
# EXTRAS: the backends the image can drive (drop the SDKs you do not use).
# In the fleet the proxy runs its programs on the sandbox server (sandbox_url), so this image
# runs no untrusted code itself. Nothing needs a shell at run time; the root file system can be
# read-only as long as /tmp is writable.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG EXTRAS=proxy,anthropic,openai,bedrock
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/openptc
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/openptc/bin/pip install "/src[${EXTRAS}]"

FROM ${BASE}
RUN groupadd --gid 10001 ptc \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin ptc \
    && chmod 1777 /tmp
COPY --from=build /opt/openptc /opt/openptc
ENV PATH=/opt/openptc/bin:$PATH \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# On Fargate a bind mount at a VOLUME path starts from the image's directory (mode 1777 here).
VOLUME ["/tmp"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8082
ENTRYPOINT ["ptc"]
CMD ["serve", "--config", "/etc/openptc/proxy.toml", "--host", "0.0.0.0", "--port", "8082"]
