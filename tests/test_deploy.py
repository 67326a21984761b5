"""The deployment files under deploy/: every one parses and is valid for the system that reads
it (Kubernetes objects against the API's OpenAPI schemas, ECS requests against botocore's own
request shapes, compose against the Compose Specification), keeps its hardening, and passes
only flags and environment variables that ``ptc serve`` and ``ptc sandbox-server`` define.

Offline and fast: the schemas ship with kubernetes-validate, botocore and check-jsonschema.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import itertools
import json
import re
import shlex
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
ECS = DEPLOY / "ecs"
COMPOSE = DEPLOY / "compose.yaml"
FLEET_DOC = ROOT / "docs" / "fleet.md"

SANDBOX_PORT = 8090
PROXY_PORT = 8082
UID = 10001
NAMESPACE = "openptc"
SANDBOX_LABELS = {"app.kubernetes.io/name": "ptc-sandbox-server"}
FARGATE_MAX_STOP_TIMEOUT_S = 120

# The contract the manifests rely on: what each command takes, by flag and by environment.
SERVE_FLAGS = {
    "--config",
    "--host",
    "--port",
    "--model",
    "--api-key",
    "--redis-url",
    "--advertise-url",
    "--sandbox-url",
    "--log-level",
}
SANDBOX_SERVER_FLAGS = {
    "--token",
    "--host",
    "--port",
    "--backend",
    "--max-sessions-per-token",
    "--session-idle-s",
    "--drain-timeout-s",
    "--pool-size",
    "--max-execution-s",
    "--log-level",
}
SERVE_ENV = {
    "PTC_PROXY_API_KEYS",
    "PTC_ADVERTISE_URL",
    "PTC_REDIS_URL",
    "PTC_SANDBOX_URL",
    "PTC_SANDBOX_TOKEN",
}
SANDBOX_SERVER_ENV = {"PTC_SANDBOX_TOKENS"}
# Read by the model SDKs (README: "Real models"), not by openptc itself.
MODEL_ENV = {
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
}
# Kubernetes only: interpolated into PTC_ADVERTISE_URL as $(POD_IP).
HELPER_ENV = {"POD_IP"}
# Set by the images for every process; not configuration.
IMAGE_ENV = {"PATH", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|REDIS_URL")

ECS_PLACEHOLDERS = {
    "AWS_ACCOUNT_ID": "123456789012",
    "AWS_REGION": "us-east-1",
    "IMAGE_TAG": "0.1.0",
    "CLUSTER": "openptc",
    "PRIVATE_SUBNET_1": "subnet-0123456789abcdef0",
    "PRIVATE_SUBNET_2": "subnet-0123456789abcdef1",
    "SANDBOX_SECURITY_GROUP": "sg-0123456789abcdef0",
    "PROXY_SECURITY_GROUP": "sg-0123456789abcdef1",
    "SANDBOX_TARGET_GROUP_ARN": (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ptc-sandbox/0123456789abcdef"
    ),
    "PROXY_TARGET_GROUP_ARN": (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ptc-proxy/0123456789abcdef"
    ),
    "SANDBOX_SERVER_URL": "http://internal-ptc-sandbox-0123456789.us-east-1.elb.amazonaws.com:8090",
    "BEDROCK_MODEL_ID": "us.anthropic.claude-sonnet-4-6",
}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# File name suffix -> (botocore service, operation whose request body the file is).
ECS_OPERATIONS = {
    ".task-definition.json": ("ecs", "RegisterTaskDefinition"),
    ".service.json": ("ecs", "CreateService"),
    ".scalable-target.json": ("application-autoscaling", "RegisterScalableTarget"),
    ".scaling-policy.json": ("application-autoscaling", "PutScalingPolicy"),
}


# ---------------------------------------------------------------------------------------------
# Loading


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@cache
def k8s_objects() -> tuple[tuple[str, dict[str, Any]], ...]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml_documents(path)]
    return tuple(found)


def k8s_of(kind: str) -> list[dict[str, Any]]:
    return [obj for _, obj in k8s_objects() if obj["kind"] == kind]


def k8s_named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [obj for obj in k8s_of(kind) if obj["metadata"]["name"] == name]
    return found


def sandbox_deployment() -> dict[str, Any]:
    return k8s_named("Deployment", "ptc-sandbox-server")


def proxy_deployment() -> dict[str, Any]:
    return k8s_named("Deployment", "ptc-proxy")


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def ecs_files() -> list[Path]:
    return sorted(ECS.glob("*.json"))


def ecs_raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ECS / name).read_text())
    return data


def ecs_filled(path: Path) -> dict[str, Any]:
    """The request body with every ${PLACEHOLDER} replaced by a value of the right form."""
    text = PLACEHOLDER.sub(lambda m: ECS_PLACEHOLDERS[m.group(1)], path.read_text())
    data: dict[str, Any] = json.loads(text)
    return data


def ecs_task_definitions() -> list[dict[str, Any]]:
    return [ecs_raw(p.name) for p in ecs_files() if p.name.endswith(".task-definition.json")]


def ecs_services() -> list[dict[str, Any]]:
    return [ecs_raw(p.name) for p in ecs_files() if p.name.endswith(".service.json")]


def fleet_doc() -> str:
    return FLEET_DOC.read_text()


# ---------------------------------------------------------------------------------------------
# Every way the two commands are launched, with the flags and environment each passes


@dataclass
class Launch:
    where: str
    argv: list[str]
    env: set[str] = field(default_factory=set)

    @property
    def command(self) -> str:
        return self.argv[0]

    def flags(self) -> dict[str, str]:
        """``--flag value`` and ``--flag=value`` pairs (every flag of both commands takes one)."""
        found: dict[str, str] = {}
        args = iter(self.argv[1:])
        for arg in args:
            assert arg.startswith("--"), f"{self.where}: stray argument {arg!r} in {self.argv}"
            name, eq, value = arg.partition("=")
            found[name] = value if eq else next(args)
        return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def launches() -> list[Launch]:
    found = []
    for name in ("proxy.Dockerfile", "sandbox-server.Dockerfile"):
        (cmd,) = [args for op, args in final_stage(DEPLOY / name) if op == "CMD"]
        found.append(Launch(f"deploy/{name} CMD", json.loads(cmd)))
    for service_name, service in compose()["services"].items():
        if service_name in ("proxy", "sandbox-server"):
            command = service["command"]
            argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
            found.append(Launch(f"compose {service_name}", argv, set(service["environment"])))
    for task in ecs_task_definitions():
        for container in task["containerDefinitions"]:
            env = {e["name"] for e in container.get("environment", [])}
            env |= {s["name"] for s in container.get("secrets", [])}
            found.append(Launch(f"ecs {task['family']}", container["command"], env))
    for deployment in k8s_of("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env = {e["name"] for e in container.get("env", [])}
            where = f"k8s {deployment['metadata']['name']}"
            found.append(Launch(where, container["args"], env))
    return found


def sandbox_launches() -> list[Launch]:
    return [launch for launch in launches() if launch.command == "sandbox-server"]


def proxy_launches() -> list[Launch]:
    return [launch for launch in launches() if launch.command == "serve"]


def test_each_platform_launches_both_commands() -> None:
    found = sorted((launch.where.split()[0], launch.command) for launch in launches())
    assert found == [
        ("compose", "sandbox-server"),
        ("compose", "serve"),
        ("deploy/proxy.Dockerfile", "serve"),
        ("deploy/sandbox-server.Dockerfile", "sandbox-server"),
        ("ecs", "sandbox-server"),
        ("ecs", "serve"),
        ("k8s", "sandbox-server"),
        ("k8s", "serve"),
    ]


def test_every_flag_is_one_the_commands_define() -> None:
    contract = {"serve": SERVE_FLAGS, "sandbox-server": SANDBOX_SERVER_FLAGS}
    for launch in launches():
        assert launch.command in contract, f"{launch.where}: unknown command {launch.argv}"
        unknown = set(launch.flags()) - contract[launch.command]
        assert not unknown, f"{launch.where}: flags outside the contract: {sorted(unknown)}"


def test_every_environment_variable_is_one_the_commands_read() -> None:
    contract = {
        "serve": SERVE_ENV | MODEL_ENV | HELPER_ENV,
        "sandbox-server": SANDBOX_SERVER_ENV,
    }
    for launch in launches():
        unknown = launch.env - contract[launch.command]
        assert not unknown, f"{launch.where}: variables outside the contract: {sorted(unknown)}"


def test_the_cli_defines_every_flag_the_manifests_pass() -> None:
    import typer.main

    from openptc.cli import app

    group: Any = typer.main.get_command(app)
    for launch in launches():
        command = group.commands[launch.command]
        defined = {opt for param in command.params for opt in param.opts}
        missing = set(launch.flags()) - defined
        assert not missing, f"{launch.where}: `ptc {launch.command}` lacks {sorted(missing)}"


def test_openptc_reads_every_variable_the_manifests_pass() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "openptc").rglob("*.py"))
    for variable in sorted(SERVE_ENV | SANDBOX_SERVER_ENV):
        assert f'"{variable}"' in source, f"no module of openptc reads {variable}"


def test_the_same_ports_and_addresses_everywhere() -> None:
    ports = {"serve": PROXY_PORT, "sandbox-server": SANDBOX_PORT}
    for launch in launches():
        flags = launch.flags()
        assert flags.get("--port") == str(ports[launch.command]), launch.where
        assert flags.get("--host") == "0.0.0.0", launch.where


def test_the_sandbox_server_runs_with_the_same_settings_everywhere() -> None:
    deployed = [launch for launch in sandbox_launches() if "Dockerfile" not in launch.where]
    assert len(deployed) == 3
    first = deployed[0]
    for launch in deployed[1:]:
        assert launch.flags() == first.flags(), f"{launch.where} differs from {first.where}"
    assert "--drain-timeout-s" in first.flags()


def sandbox_setting(flag: str) -> float:
    """The one value every deployed sandbox server is given for ``flag``."""
    values = {launch.flags().get(flag) for launch in sandbox_launches()}
    values.discard(None)  # the image's default CMD leaves the settings to the deployments
    (value,) = values
    assert value is not None
    return float(value)


def drain_timeout_s() -> float:
    return sandbox_setting("--drain-timeout-s")


def max_execution_s() -> float:
    return sandbox_setting("--max-execution-s")


def test_no_secret_is_a_literal_anywhere() -> None:
    # compose: secrets only by ${VAR:?...} interpolation; ECS: in "secrets"; k8s: secretKeyRef.
    for name, value in compose()["services"]["proxy"]["environment"].items():
        if SECRET_NAME.search(name):
            assert value is None or str(value).startswith("${"), name
    for name, value in compose()["services"]["sandbox-server"]["environment"].items():
        assert str(value).startswith(f"${{{name}:?"), name
    for task in ecs_task_definitions():
        for container in task["containerDefinitions"]:
            for variable in container.get("environment", []):
                assert not SECRET_NAME.search(variable["name"]), variable
            for secret in container.get("secrets", []):
                assert secret["valueFrom"].startswith("arn:aws:secretsmanager:"), secret
    for deployment in k8s_of("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable


# ---------------------------------------------------------------------------------------------
# Every file parses


def test_every_yaml_and_json_file_under_deploy_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    assert len(files) >= 12
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            assert yaml_documents(path), path


# ---------------------------------------------------------------------------------------------
# Images


@pytest.mark.parametrize(
    ("name", "port", "extra"),
    [
        ("sandbox-server.Dockerfile", SANDBOX_PORT, "server"),
        ("proxy.Dockerfile", PROXY_PORT, "proxy"),
    ],
)
def test_image(name: str, port: int, extra: str) -> None:
    path = DEPLOY / name
    instructions = dockerfile_instructions(path)
    assert instructions[0] == ("ARG", "BASE=python:3.11-slim")
    assert all(args.split()[0] == "${BASE}" for op, args in instructions if op == "FROM")
    text = path.read_text()
    extras = re.search(r'pip install "/src\[([^\]]+)\]"', text)
    assert extras is not None
    if extras.group(1) == "${EXTRAS}":
        (default,) = re.findall(r"ARG EXTRAS=(\S+)", text)
        assert extra in default.split(",")
    else:
        assert extra in extras.group(1).split(",")
    final = final_stage(path)
    users = [args for op, args in final if op == "USER"]
    assert users == [f"{UID}:{UID}"], "the image runs as a fixed, numeric, non-root user"
    env = " ".join(args for op, args in final if op == "ENV")
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env, "writable places only under /tmp"
    assert ("EXPOSE", str(port)) in final
    (entrypoint,) = [args for op, args in final if op == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["ptc"], "exec form: no shell at run time"
    (cmd,) = [args for op, args in final if op == "CMD"]
    assert isinstance(json.loads(cmd), list)
    assert ("VOLUME", '["/tmp"]') in final, "Fargate's bind mount at /tmp keeps mode 1777"


# ---------------------------------------------------------------------------------------------
# Compose


@cache
def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def test_compose_is_valid_against_the_compose_specification() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_compose_schema_catches_a_typo() -> None:
    import jsonschema

    broken = json.loads(json.dumps(compose()))
    broken["services"]["proxy"]["read_onyl"] = True
    assert list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(broken))


def test_compose_services_are_hardened() -> None:
    services = compose()["services"]
    assert set(services) == {"proxy", "sandbox-server", "redis"}
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert not service.get("cap_add"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name
        uid = int(str(service["user"]).split(":")[0])
        assert uid > 0, f"{name} runs as root"
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert "pids_limit" in service and "mem_limit" in service, name
        assert any(t.startswith("/tmp:") for t in service.get("tmpfs", [])), name
    for name in ("proxy", "sandbox-server"):
        assert services[name]["user"] == f"{UID}:{UID}", name
        assert services[name].get("init") is True, f"{name} reaps its sandboxes' processes"


def test_compose_sandbox_server_has_no_way_out() -> None:
    services, networks = compose()["services"], compose()["networks"]
    sandbox = services["sandbox-server"]
    assert "ports" not in sandbox and "network_mode" not in sandbox
    assert sandbox["networks"], "on the default network it would have egress"
    for network in sandbox["networks"]:
        assert networks[network].get("internal") is True, network
        members = {n for n, s in services.items() if network in s.get("networks", [])}
        assert members == {"sandbox-server", "proxy"}, f"{network}: {members}"
    for network in services["redis"]["networks"]:
        assert networks[network].get("internal") is True, network
    assert "ports" not in services["redis"]


def test_compose_healthchecks_probe_the_right_endpoints() -> None:
    services = compose()["services"]
    proxy_check = " ".join(services["proxy"]["healthcheck"]["test"])
    sandbox_check = " ".join(services["sandbox-server"]["healthcheck"]["test"])
    assert f"127.0.0.1:{PROXY_PORT}/health'" in proxy_check
    assert f"127.0.0.1:{SANDBOX_PORT}/readyz'" in sandbox_check
    assert services["proxy"]["depends_on"]["sandbox-server"]["condition"] == "service_healthy"
    assert services["proxy"]["ports"] == [f"127.0.0.1:{PROXY_PORT}:{PROXY_PORT}"]


def duration_s(text: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", text)
    assert match, text
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def test_compose_waits_out_the_drain() -> None:
    grace = duration_s(compose()["services"]["sandbox-server"]["stop_grace_period"])
    assert grace > drain_timeout_s()


def test_compose_secrets_are_required_placeholders_listed_in_the_example_env() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert required == {"PTC_PROXY_API_KEYS", "PTC_SANDBOX_TOKEN", "PTC_SANDBOX_TOKENS"}
    example = (DEPLOY / "compose" / "example.env").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert set(values) == required
    assert all(value.startswith("replace-with-") for value in values.values())


def test_compose_build_and_mounts_point_at_files_that_exist() -> None:
    services = compose()["services"]
    for name in ("proxy", "sandbox-server"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file(), name
    for mount in services["proxy"]["volumes"]:
        source, target, mode = mount.split(":")
        assert (COMPOSE.parent / source).is_file() and mode == "ro", mount
        assert target == "/etc/openptc/proxy.toml"


# ---------------------------------------------------------------------------------------------
# The proxy's configuration files (compose, Kubernetes ConfigMap)


def proxy_tomls() -> dict[str, str]:
    config_map = k8s_named("ConfigMap", "ptc-proxy-config")
    return {
        "compose": (DEPLOY / "compose" / "proxy.toml").read_text(),
        "k8s": config_map["data"]["proxy.toml"],
    }


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_proxy_toml_holds_no_secret(where: str) -> None:
    data = tomllib.loads(proxy_tomls()[where])
    assert "api_keys" not in data and "sandbox_token" not in data
    assert "@" not in data.get("redis_url", ""), "a Redis password belongs in a secret"


@pytest.mark.parametrize(
    ("where", "sandbox_url", "redis_url"),
    [
        ("compose", f"http://sandbox-server:{SANDBOX_PORT}", "redis://redis:6379/0"),
        ("k8s", f"http://ptc-sandbox-server:{SANDBOX_PORT}", None),
    ],
)
def test_proxy_toml_loads_with_the_secrets_from_the_environment(
    where: str,
    sandbox_url: str,
    redis_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from openptc.proxy.serve import build_config

    for variable in SERVE_ENV:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PTC_PROXY_API_KEYS", "client-key-1,client-key-2")
    monkeypatch.setenv("PTC_SANDBOX_TOKEN", "sandbox-token")
    path = tmp_path / "proxy.toml"
    path.write_text(proxy_tomls()[where])
    config = build_config(path, [], [], None)
    assert config.sandbox_url == sandbox_url
    assert config.redis_url == redis_url
    assert config.sandbox_token is not None
    assert len(config.api_keys) == 2
    assert config.program_timeout_s <= max_execution_s(), "the server must allow the wait"


# ---------------------------------------------------------------------------------------------
# ECS (Fargate)


def test_every_ecs_file_is_a_known_request() -> None:
    names = [p.name for p in ecs_files()]
    for name in names:
        assert any(name.endswith(suffix) for suffix in ECS_OPERATIONS), name
    for role in ("sandbox-server", "proxy"):
        for suffix in ECS_OPERATIONS:
            assert f"{role}{suffix}" in names


@pytest.mark.parametrize("name", [p.name for p in sorted(ECS.glob("*.json"))])
def test_ecs_request_is_valid_for_botocore(name: str) -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    (service, operation) = next(v for k, v in ECS_OPERATIONS.items() if name.endswith(k))
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(ecs_filled(ECS / name), shape)
    assert not report.has_errors(), report.generate_report()


def test_botocore_validation_catches_a_typo() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    body = ecs_filled(ECS / "sandbox-server.task-definition.json")
    body["containerDefinitions"][0]["readOnlyRootFilesystem"] = True  # wrong case
    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    assert ParamValidator().validate(body, shape).has_errors()


def test_ecs_placeholders_are_known_and_documented() -> None:
    doc = fleet_doc()
    for path in ecs_files():
        for placeholder in set(PLACEHOLDER.findall(path.read_text())):
            assert placeholder in ECS_PLACEHOLDERS, f"{path.name}: ${{{placeholder}}}"
            assert f"${{{placeholder}}}" in doc, f"docs/fleet.md does not explain {placeholder}"
        assert not re.search(r"\b\d{12}\b", path.read_text()), f"{path.name}: an account id"


def test_ecs_task_definitions_are_hardened() -> None:
    tasks = ecs_task_definitions()
    assert {t["family"] for t in tasks} == {"openptc-sandbox-server", "openptc-proxy"}
    for task in tasks:
        family = task["family"]
        assert task["networkMode"] == "awsvpc", family
        assert task["requiresCompatibilities"] == ["FARGATE"], family
        volumes = {v["name"]: v for v in task.get("volumes", [])}
        for c in task["containerDefinitions"]:
            where = f"{family}/{c['name']}"
            assert c["readonlyRootFilesystem"] is True, where
            assert c["user"] == f"{UID}:{UID}", where
            assert not c.get("privileged"), where
            linux = c["linuxParameters"]
            assert linux["capabilities"]["drop"] == ["ALL"], where
            assert not linux["capabilities"].get("add"), where
            assert linux["initProcessEnabled"] is True, where
            (tmp,) = [m for m in c["mountPoints"] if m["containerPath"] == "/tmp"]
            assert tmp["readOnly"] is False
            volume = volumes[tmp["sourceVolume"]]
            assert set(volume) == {"name"}, "a task-storage bind mount, not the host's disk"
            assert c["healthCheck"]["command"][0] == "CMD", where
            assert c["logConfiguration"]["logDriver"] == "awslogs", where
            assert c["logConfiguration"]["options"]["awslogs-region"] == "${AWS_REGION}"
            assert 0 < c["stopTimeout"] <= FARGATE_MAX_STOP_TIMEOUT_S, where
            assert c["essential"] is True


def ecs_container(family: str) -> dict[str, Any]:
    (task,) = [t for t in ecs_task_definitions() if t["family"] == family]
    (container,) = task["containerDefinitions"]
    return dict(container)


def test_ecs_sandbox_server_has_no_aws_identity_and_drains() -> None:
    (task,) = [t for t in ecs_task_definitions() if t["family"] == "openptc-sandbox-server"]
    assert "taskRoleArn" not in task, "programs must get no AWS credentials from the task"
    container = ecs_container("openptc-sandbox-server")
    assert container["stopTimeout"] > drain_timeout_s()
    assert f":{SANDBOX_PORT}/healthz'" in container["healthCheck"]["command"][-1]
    assert container["portMappings"][0]["containerPort"] == SANDBOX_PORT
    proxy = ecs_container("openptc-proxy")
    assert f":{PROXY_PORT}/health'" in proxy["healthCheck"]["command"][-1]
    assert proxy["portMappings"][0]["containerPort"] == PROXY_PORT
    environment = {e["name"]: e["value"] for e in proxy["environment"]}
    assert environment["PTC_SANDBOX_URL"] == "${SANDBOX_SERVER_URL}"
    assert ECS_PLACEHOLDERS["SANDBOX_SERVER_URL"].endswith(f":{SANDBOX_PORT}")


def test_ecs_services_have_no_public_ip_and_match_their_tasks() -> None:
    tasks = {t["family"]: t for t in ecs_task_definitions()}
    services = ecs_services()
    assert len(services) == 2
    for service in services:
        name = service["serviceName"]
        assert service["launchType"] == "FARGATE", name
        network = service["networkConfiguration"]["awsvpcConfiguration"]
        assert network["assignPublicIp"] == "DISABLED", name
        assert network["securityGroups"] and len(network["subnets"]) >= 2, name
        assert service["desiredCount"] >= 2, name
        assert service["enableExecuteCommand"] is False, name
        assert service["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] is True
        task = tasks[service["taskDefinition"]]
        (container,) = task["containerDefinitions"]
        (balancer,) = service["loadBalancers"]
        assert balancer["containerName"] == container["name"], name
        assert balancer["containerPort"] == container["portMappings"][0]["containerPort"], name


def test_ecs_scaling_targets_the_services() -> None:
    services = {s["serviceName"] for s in ecs_services()}
    for path in ecs_files():
        if path.name.endswith((".scalable-target.json", ".scaling-policy.json")):
            body = ecs_raw(path.name)
            prefix, cluster, service = body["ResourceId"].split("/")
            assert (prefix, cluster) == ("service", "${CLUSTER}") and service in services
            if "MinCapacity" in body:
                assert body["MinCapacity"] >= 2


# ---------------------------------------------------------------------------------------------
# Kubernetes


def k8s_versions() -> list[str]:
    from kubernetes_validate.utils import latest_version

    return sorted({"1.30", latest_version()})


def k8s_ids() -> list[str]:
    return [f"{file}:{obj['kind']}/{obj['metadata']['name']}" for file, obj in k8s_objects()]


@pytest.mark.parametrize("version", k8s_versions())
@pytest.mark.parametrize("index", range(len(k8s_objects())), ids=k8s_ids())
def test_k8s_object_is_valid_against_the_api_schema(index: int, version: str) -> None:
    import kubernetes_validate

    _, obj = k8s_objects()[index]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{'.'.join(map(str, exc.path))}: {exc.message}")


def test_k8s_schema_validation_catches_a_typo() -> None:
    import kubernetes_validate

    broken = json.loads(json.dumps(sandbox_deployment()))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = yaml_documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    used = {
        c["image"].rsplit(":", 1)[0]
        for d in k8s_of("Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == used


def test_k8s_namespace_enforces_the_restricted_pod_security_standard() -> None:
    (namespace,) = k8s_of("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for _, obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


@pytest.mark.parametrize("name", ["ptc-sandbox-server", "ptc-proxy"])
def test_k8s_pods_are_hardened(name: str) -> None:
    pod = k8s_named("Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host_field), host_field
    account = k8s_named("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():
        assert "hostPath" not in volume, volume["name"]
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert not security.get("privileged")
        assert security["capabilities"]["drop"] == ["ALL"]
        assert not security["capabilities"].get("add")
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), kind
        (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        empty_dir = volumes[tmp["name"]]["emptyDir"]
        assert empty_dir["medium"] == "Memory" and empty_dir["sizeLimit"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "http", probe
        (port,) = container["ports"]
        assert port["name"] == "http"
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0


def test_k8s_probes_and_ports() -> None:
    sandbox = sandbox_deployment()["spec"]["template"]["spec"]["containers"][0]
    assert sandbox["ports"][0]["containerPort"] == SANDBOX_PORT
    assert sandbox["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sandbox["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert sandbox["readinessProbe"]["httpGet"]["path"] == "/readyz"
    proxy = proxy_deployment()["spec"]["template"]["spec"]["containers"][0]
    assert proxy["ports"][0]["containerPort"] == PROXY_PORT
    for probe in ("startupProbe", "livenessProbe"):
        assert proxy[probe]["httpGet"]["path"] == "/health"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"  # 503 while draining
    annotations = sandbox_deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(SANDBOX_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_k8s_sandbox_server_drains_before_it_is_killed() -> None:
    pod = sandbox_deployment()["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain_timeout_s()
    strategy = sandbox_deployment()["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_k8s_services_select_their_pods_on_the_same_port() -> None:
    ports = {"ptc-sandbox-server": SANDBOX_PORT, "ptc-proxy": PROXY_PORT}
    for service in k8s_of("Service"):
        name = service["metadata"]["name"]
        deployment = k8s_named("Deployment", name)
        assert selects(
            service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]
        )
        (port,) = service["spec"]["ports"]
        assert port["port"] == ports[name] and port["targetPort"] == "http"
        assert service["spec"]["type"] == "ClusterIP"
    for budget in k8s_of("PodDisruptionBudget"):
        deployment = k8s_named("Deployment", budget["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(budget["spec"]["selector"]["matchLabels"], labels)


def test_k8s_autoscalers() -> None:
    for hpa in k8s_of("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        k8s_named("Deployment", target["name"])
        assert hpa["spec"]["minReplicas"] >= 2
        resources = [
            m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"
        ]
        assert resources == ["cpu"]
    metrics = k8s_named("HorizontalPodAutoscaler", "ptc-sandbox-server")["spec"]["metrics"]
    (pods,) = [m["pods"] for m in metrics if m["type"] == "Pods"]
    assert pods["metric"]["name"] == "ptc_sandbox_sessions_active"
    assert pods["target"]["type"] == "AverageValue"


def test_k8s_sandbox_pods_have_no_egress_and_only_client_ingress() -> None:
    labels = sandbox_deployment()["spec"]["template"]["metadata"]["labels"]
    assert selects(SANDBOX_LABELS, labels)
    policies = [
        p
        for p in k8s_of("NetworkPolicy")
        if selects(p["spec"]["podSelector"]["matchLabels"], labels)
    ]
    assert policies, "no NetworkPolicy selects the sandbox pods"
    # Policies add up: one that allowed any egress would open it, so none may.
    assert any("Egress" in p["spec"]["policyTypes"] for p in policies)
    for policy in policies:
        assert not policy["spec"].get("egress"), policy["metadata"]["name"]
    proxy_labels = proxy_deployment()["spec"]["template"]["metadata"]["labels"]
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            assert rule["ports"] == [{"port": SANDBOX_PORT, "protocol": "TCP"}]
            for peer in rule["from"]:
                assert "ipBlock" not in peer
                if "podSelector" in peer:
                    assert "namespaceSelector" not in peer
                    assert selects(peer["podSelector"]["matchLabels"], proxy_labels)
                    assert not selects(peer["podSelector"]["matchLabels"], labels)
                else:
                    assert peer["namespaceSelector"]["matchLabels"] == {
                        "kubernetes.io/metadata.name": "monitoring"
                    }


def k8s_env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_k8s_proxy_advertises_its_pod_ip_and_reads_secrets() -> None:
    env = k8s_env(proxy_deployment())
    names = [e["name"] for e in env]
    pod_ip = env[names.index("POD_IP")]
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    advertise = env[names.index("PTC_ADVERTISE_URL")]
    assert advertise["value"] == f"http://$(POD_IP):{PROXY_PORT}"
    assert names.index("POD_IP") < names.index("PTC_ADVERTISE_URL"), "defined before use"
    for name in ("PTC_PROXY_API_KEYS", "PTC_REDIS_URL", "PTC_SANDBOX_TOKEN"):
        assert "secretKeyRef" in env[names.index(name)]["valueFrom"], name
    proxy_token = env[names.index("PTC_SANDBOX_TOKEN")]["valueFrom"]["secretKeyRef"]
    server_tokens = k8s_env(sandbox_deployment())[0]["valueFrom"]["secretKeyRef"]
    assert proxy_token["name"] == server_tokens["name"], "one Secret holds both sides' tokens"
    toml = tomllib.loads(k8s_named("ConfigMap", "ptc-proxy-config")["data"]["proxy.toml"])
    service = k8s_named("Service", "ptc-sandbox-server")
    assert toml["sandbox_url"] == f"http://{service['metadata']['name']}:{SANDBOX_PORT}"
    volumes = proxy_deployment()["spec"]["template"]["spec"]["volumes"]
    (config,) = [v for v in volumes if "configMap" in v]
    assert config["configMap"]["name"] == "ptc-proxy-config"


def secret_refs() -> Iterator[tuple[str, str, bool]]:
    for deployment in k8s_of("Deployment"):
        for variable in k8s_env(deployment):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield ref["name"], ref["key"], bool(ref.get("optional"))


def test_every_k8s_secret_is_created_in_the_docs() -> None:
    doc = fleet_doc()
    for name, key, _ in secret_refs():
        assert f"create secret generic {name}" in doc, name
        assert f"--from-literal={key}=" in doc, f"{name}/{key}"


# ---------------------------------------------------------------------------------------------
# Routing: what the plain Service (and the ECS load balancer) relies on


@contextlib.asynccontextmanager
async def connection_balancer(backends: list[str]) -> AsyncIterator[str]:
    """Each new TCP connection to the next backend in turn, as kube-proxy behind a ClusterIP
    Service without session affinity (or a load balancer without stickiness) does."""
    ports = itertools.cycle([int(url.rsplit(":", 1)[1]) for url in backends])

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", next(ports))
        await asyncio.gather(pipe(reader, backend_writer), pipe(backend_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_sessions_work_behind_a_service_that_balances_connections() -> None:
    """The manifests put the sandbox servers behind a plain Service (ECS: a load balancer):
    every new connection may reach another replica. A session must still work end to end."""
    from fakes.sandbox_server import TOKEN, running_server
    from openptc.sandbox.remote import RemoteSandbox

    async with (
        running_server(pool_size=0) as first,
        running_server(pool_size=0) as second,
        connection_balancer([first, second]) as url,
        RemoteSandbox(url, TOKEN) as sandbox,
    ):
        for number in range(4):
            session = await sandbox.open_session()
            execution = await session.execute(f"x = {number}\nprint(x * 2)")
            assert execution.stdout == f"{number * 2}\n"
            await session.close()


# ---------------------------------------------------------------------------------------------
# The docs page


def test_the_fleet_page_covers_each_way_to_run_it() -> None:
    doc = fleet_doc()
    for needle in (
        "deploy/compose.yaml",
        "deploy/ecs/",
        "kubectl apply -k deploy/k8s",
        "advertise_url",
        "sessionAffinity",
        "ptc_sandbox_sessions_active",
        "--drain-timeout-s",
        "terminationGracePeriodSeconds",
        "stopTimeout",
    ):
        assert needle in doc, needle
