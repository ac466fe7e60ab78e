"""A real nginx in front of real servers, configured by the file we ship.

:func:`running_nginx` renders ``deploy/nginx/tidings.conf`` with only what a test machine must
change (free loopback ports, a throwaway certificate, log paths, the backends), wraps it in a
minimal main configuration whose pid, logs and temporary files live in the test's folder, and
runs Debian's nginx as a foreground subprocess. Every swap must find its text in the shipped
file, so an edit there that a test would silently stop covering fails here instead.
"""

import contextlib
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support import free_port, wait_until

SHIPPED_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "tidings.conf"
# Debian puts nginx in /usr/sbin, which a non-root PATH often lacks.
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
)
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_UPSTREAM = re.compile(r'upstream="([^"]*)"')


@dataclass(frozen=True)
class Logged:
    """One line of the front's access log: the request and the backends nginx tried for it,
    in order (the last one answered; empty when nginx answered itself)."""

    request: str
    status: int
    upstreams: tuple[str, ...]


@dataclass(frozen=True)
class NginxFront:
    """A running nginx: its two listening URLs, the CA file that verifies its certificate, and
    its logs."""

    https_url: str
    http_url: str
    cafile: Path
    error_log: Path
    access_log: Path
    folder: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this front's certificate (httpx ``verify=``, websockets
        ``ssl=``)."""
        return ssl.create_default_context(cafile=str(self.cafile))

    @property
    def wss_url(self) -> str:
        return self.https_url.replace("https://", "wss://", 1) + "/api/v4/websocket"

    def wait_logged(self, marker: str, count: int, timeout: float = 10.0) -> list[Logged]:
        """The access-log entries whose request line contains ``marker`` (a query parameter
        the test added, say), once there are ``count`` of them. nginx writes a line after the
        response has gone, so a test waits for its own lines instead of counting everyone's."""
        return wait_until(  # type: ignore[no-any-return]
            lambda: (
                len(mine := [e for e in self.logged() if marker in e.request]) == count and mine
            ),
            timeout,
        )

    def logged(self) -> list[Logged]:
        """The access log of the HTTPS server so far (see :meth:`wait_logged`)."""
        entries = []
        for line in self.access_log.read_text().splitlines():
            request = line.split('"', 2)[1]
            status = int(line.split('"', 2)[2].split()[0])
            match = _UPSTREAM.search(line)
            addresses = match.group(1) if match else "-"
            upstreams = () if addresses == "-" else tuple(addresses.split(", "))
            entries.append(Logged(request, status, upstreams))
        return entries


def render_conf(
    backends: Sequence[str], *, http_port: int, https_port: int, cert: Path, key: Path, logs: Path
) -> str:
    """``deploy/nginx/tidings.conf`` as a test machine runs it: loopback only, its own ports,
    certificate, log files and upstream servers. Nothing else changes."""
    if not backends:
        raise ValueError("nginx needs at least one backend")
    swaps = [
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl;\n", f"    listen 127.0.0.1:{https_port} ssl;\n"),
        ("    listen [::]:443 ssl;\n", ""),
        # The redirect must name the test's HTTPS port; production's is the default one.
        (
            "return 301 https://$host$request_uri;",
            f"return 301 https://$host:{https_port}$request_uri;",
        ),
        ("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(key)),
        ("/var/log/nginx/tidings.access.log", str(logs / "access.log")),
        ("/var/log/nginx/tidings.error.log", str(logs / "error.log")),
        ("    server 127.0.0.1:8065;\n", "".join(f"    server {b};\n" for b in backends)),
    ]
    text = SHIPPED_CONF.read_text()
    for old, new in swaps:
        if text.count(old) != 1:
            raise AssertionError(
                f"{SHIPPED_CONF} no longer has {old.strip()!r} exactly once: "
                "update tests/nginx_support.py to match it"
            )
        text = text.replace(old, new)
    return text


def _main_conf(folder: Path, site: Path) -> str:
    """The part Debian's /etc/nginx/nginx.conf plays, with every path inside ``folder``."""
    temp = folder / "temp"
    # As root, nginx's workers would run as nobody, who may not enter pytest's private folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'};\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp_paths}"
        f"    include {site};\n"
        "}\n"
    )


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made by the openssl command line tool, as
    ``(certificate, key)`` files in ``folder``. It is its own CA: the certificate is the
    ``cafile`` that verifies it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "keyUsage=critical,digitalSignature,keyCertSign",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _wait_answering(front: NginxFront, process: "subprocess.Popen[bytes]") -> bool:
    """True once nginx answers HTTPS (any status: the backends may not be up); False if it
    exited (a port taken between choosing and binding it, or a bad configuration)."""
    deadline = time.monotonic() + 15
    with httpx.Client(verify=front.ssl_context(), timeout=2) as client:
        while process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                client.get(front.https_url + "/api/v4/system/ping")
                return True
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer on {front.https_url}")
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_nginx(backends: Sequence[str], folder: Path) -> Iterator[NginxFront]:
    """nginx, configured by ``deploy/nginx/tidings.conf``, in front of ``backends``
    ("127.0.0.1:PORT" of ``tidings serve`` processes), on free loopback ports, until the block
    ends. Its configuration, certificate, logs and pid file are written to ``folder``."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian's nginx package; .ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / kind).mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(folder)
    site, main = folder / "tidings.conf", folder / "nginx.conf"
    main.write_text(_main_conf(folder, site))
    for _ in range(3):
        http_port, https_port = free_port(), free_port()
        site.write_text(
            render_conf(
                backends,
                http_port=http_port,
                https_port=https_port,
                cert=cert,
                key=key,
                logs=folder,
            )
        )
        front = NginxFront(
            https_url=f"https://127.0.0.1:{https_port}",
            http_url=f"http://127.0.0.1:{http_port}",
            cafile=cert,
            error_log=folder / "error.log",
            access_log=folder / "access.log",
            folder=folder,
        )
        with (folder / "nginx.out").open("ab") as sink:
            process = subprocess.Popen(
                [
                    NGINX,
                    "-e",
                    str(front.error_log),
                    "-p",
                    str(folder),
                    "-c",
                    str(main),
                    "-g",
                    "daemon off;",
                ],
                stdout=sink,
                stderr=sink,
            )
        try:
            if _wait_answering(front, process):
                break
        except BaseException:
            process.kill()
            process.wait(5)
            raise
    else:
        raise RuntimeError(f"nginx would not start: {front.error_log.read_text(errors='replace')}")
    try:
        yield front
    finally:
        # SIGTERM is nginx's fast shutdown: open connections (websockets) are closed, not waited for.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
