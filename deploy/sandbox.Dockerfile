# The sandbox image of openptc's Docker backend: a Python interpreter and the runtime, nothing else.
#
# Build it with scripts/sandbox-image.sh, which tags it openptc-sandbox:<first 12 hex digits of
# the digest of runtime.py and ptc_program.py (docker/container.py's runtime_digest)>, the name
# the backend looks for; a runtime change thus never meets an image built from an older one. By
# hand, from the repository root:
#
#   docker build -f deploy/sandbox.Dockerfile --build-arg BASE=python:3.12-slim -t NAME .
#
# BASE is any image with python3 (>= 3.11) on PATH: the official slim images, or one made without
# a registry (scripts/sandbox-image.sh --local-base). No openptc package and no pip installs: the
# runtime is standard library only, and tools run on the host, never in here. There is no
# ENTRYPOINT on purpose: the backend passes the command that starts the runtime on its bridge.
# The backend also imposes what an image cannot: no network, a read-only root, tmpfs work
# directories, no capabilities, no-new-privileges and pids, memory and CPU limits.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG RUNTIME_SHA256=unknown
LABEL org.opencontainers.image.title="openptc sandbox" \
      org.opencontainers.image.description="Runs model-written programs for openptc's Docker backend" \
      io.openptc.runtime.sha256="${RUNTIME_SHA256}"

# The runtime and ptc_program, the module it shares with the replay harness, under the names the
# runtime imports them by (src/openptc/sandbox/bundle.py makes the same pair for local sandboxes).
COPY src/openptc/sandbox/runtime.py /opt/openptc/ptc_runtime.py
COPY src/openptc/sandbox/shipped-modules/ptc_program.py /opt/openptc/ptc_program.py
# Compiled once here, with the image's own interpreter, so that no sandbox compiles them at start;
# only the .pyc files stay (sourceless modules), and tracebacks never show a path.
RUN ["python3", "-I", "-c", "import os, py_compile\nfor name in ('runtime', 'program'):\n    src = f'/opt/openptc/ptc_{name}.py'\n    py_compile.compile(src, cfile=src + 'c', dfile=f'<openptc {name}>', doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n    os.remove(src)\n    os.chmod(src + 'c', 0o644)"]

# nobody:nogroup by number, so that the base needs no passwd tools
USER 65534:65534
WORKDIR /workspace
ENV HOME=/workspace LANG=C.UTF-8
