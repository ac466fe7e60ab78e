"""The integrator's example receiver answers ``#build`` and refuses bad tokens and signatures."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from support import free_port
from tidings.webhooks.signing import new_signing_secret, signature_headers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "build_status.py"
TOKEN = "zmigewsanbbsdf59xnmduzypjc"


@pytest.fixture(scope="module")
def example() -> Iterator[tuple[str, str]]:
    port = free_port()
    secret = new_signing_secret()
    env = {
        **os.environ,
        "PORT": str(port),
        "TIDINGS_TOKEN": TOKEN,
        "TIDINGS_SIGNING_SECRET": secret,
    }
    process = subprocess.Popen([sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield url, secret
    process.kill()
    process.wait()


def _send(url: str, secret: str, token: str, *, tamper: bool = False) -> httpx.Response:
    body = urlencode(
        sorted({"token": token, "trigger_word": "#build", "text": "#build now"}.items())
    ).encode()
    headers = signature_headers(secret, "msg_1", int(time.time()), body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.post(url, content=body + (b"x" if tamper else b""), headers=headers, timeout=5)


def test_answers_build_with_the_seed_table(example: tuple[str, str]) -> None:
    """A signed request with the right token gets the build table as the reply text."""
    response = _send(*example, TOKEN)
    assert response.status_code == 200
    assert ":white_check_mark: 0" in response.json()["text"]


def test_refuses_a_wrong_token(example: tuple[str, str]) -> None:
    """The token in the body must match the configured one."""
    assert _send(*example, "wrongtokenwrongtokenwrongt").status_code == 401


def test_refuses_a_tampered_body(example: tuple[str, str]) -> None:
    """A body that does not match its signature is refused."""
    assert _send(*example, TOKEN, tamper=True).status_code == 401
