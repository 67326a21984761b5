"""advertise_url "auto": the address comes from ECS task metadata, or from the host name."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openptc.proxy.advertise import AdvertiseError, discover_advertise_url

# The shape of the ECS task metadata endpoint v4 ``/task`` answer (the fields read here).
TASK = {
    "Cluster": "openptc",
    "TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/openptc/0123456789abcdef",
    "Containers": [
        {
            "Name": "proxy",
            "Networks": [
                {"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.3.7"]},
            ],
        }
    ],
}


@pytest.fixture
def metadata_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(TASK if self.path.endswith("/task") else {}).encode()
            self.send_response(200 if self.path.endswith("/task") else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v4/abc"
    server.shutdown()


def test_on_ecs_the_task_metadata_gives_the_address(metadata_server: str) -> None:
    env = {"ECS_CONTAINER_METADATA_URI_V4": metadata_server}
    assert discover_advertise_url(8082, env) == "http://10.0.3.7:8082"


def test_an_unreachable_metadata_endpoint_says_what_to_set() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {"ECS_CONTAINER_METADATA_URI_V4": f"http://127.0.0.1:{closed}/v4"}
    with pytest.raises(AdvertiseError, match="--advertise-url"):
        discover_advertise_url(8082, env)


def test_elsewhere_the_host_name_gives_the_address() -> None:
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if address.startswith("127."):
        with pytest.raises(AdvertiseError, match="other replicas cannot reach"):
            discover_advertise_url(8082, {})
    else:
        assert discover_advertise_url(8082, {}) == f"http://{address}:8082"
