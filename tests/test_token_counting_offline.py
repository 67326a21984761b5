"""Token counting uses OpenAI's cl100k_base from the BPE file openptc ships, checked by hash."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import resources

from openptc.models import tokens


def test_the_shipped_file_is_the_one_tiktoken_pins() -> None:
    data = resources.files("openptc.models").joinpath(tokens.BPE_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == tokens.BPE_SHA256


def test_known_strings_get_cl100k_base_token_ids() -> None:
    encoding = tokens.encoding()
    assert encoding.encode("hello world") == [15339, 1917]
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [100257]
    assert tokens.count_text("def f(x):\n    return x ** 2") == 10


def test_counting_needs_no_download_and_no_cache_directory() -> None:
    # An unusable cache directory and no proxy: tiktoken's downloader would fail if used.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from openptc.models import tokens; print(tokens.count_text('a b'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "TIKTOKEN_CACHE_DIR": "/nonexistent/x",
            "HTTPS_PROXY": "http://127.0.0.1:9",
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
