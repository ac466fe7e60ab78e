"""The files in deploy/ agree with each other and with the tools that read them: the example
environment file is valid settings, the systemd units may write the data directory it names,
and the nginx site is valid inside Debian's own nginx.conf (tests/deploy/test_nginx.py runs it)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from nginx_support import NGINX, SHIPPED_CONF, self_signed_certificate
from tidings.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
UNITS = ("tidings-serve.service", "tidings-worker.service")


def _service(unit: str) -> dict[str, str]:
    """The ``[Service]`` settings of a unit file (one value each: these units repeat none)."""
    section, found = "", {}
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def test_the_example_environment_is_valid_settings() -> None:
    settings = Settings(_env_file=DEPLOY / "tidings.env.example")
    assert settings.effective_database_url.startswith("postgresql://tidings:")
    assert settings.listen == "127.0.0.1:8065"
    assert settings.forwarded_allow_ips == "127.0.0.1,::1"


@pytest.mark.parametrize("unit", UNITS)
def test_each_unit_runs_hardened_as_its_own_user_with_the_environment_file(unit: str) -> None:
    service = _service(unit)
    data_dir = Settings(_env_file=DEPLOY / "tidings.env.example").data_dir
    assert service["User"] == "tidings"
    assert service["EnvironmentFile"] == "/etc/tidings/tidings.env"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == str(data_dir)
    assert service["ExecStart"].split()[1] == unit.removeprefix("tidings-").removesuffix(".service")


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_accepts_each_unit(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify also wants ExecStart's program to exist: point it at one that does.
    text = (DEPLOY / "systemd" / unit).read_text()
    (tmp_path / unit).write_text(text.replace("/opt/tidings/bin/tidings", "/bin/true"))
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / unit)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_the_site_is_valid_inside_debians_nginx_conf(tmp_path: Path) -> None:
    """The site as shipped belongs in conf.d/ inside Debian's http block: nginx -t on a copy of
    Debian's /etc/nginx with the site added (its default site removed, as the guide says), only
    the certificate and log paths pointed into the test's folder."""
    if NGINX is None or not Path("/etc/nginx/nginx.conf").is_file():
        pytest.skip("nginx is not installed (Debian's nginx package; .ci/run installs it)")
    etc = tmp_path / "nginx"
    shutil.copytree("/etc/nginx", etc, symlinks=True)
    main = (etc / "nginx.conf").read_text()
    for old, new in (
        ("/etc/nginx", str(etc)),
        ("/run/nginx.pid", str(tmp_path / "nginx.pid")),
        ("/var/log/nginx/", f"{tmp_path}/"),
    ):
        main = main.replace(old, new)
    (etc / "nginx.conf").write_text(main)
    (etc / "sites-enabled" / "default").unlink(missing_ok=True)
    cert, key = self_signed_certificate(tmp_path)
    site = SHIPPED_CONF.read_text()
    for old, new in (
        ("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(key)),
        ("/var/log/nginx/", f"{tmp_path}/"),
    ):
        site = site.replace(old, new)
    (etc / "conf.d" / "tidings.conf").write_text(site)
    checked = subprocess.run(
        [NGINX, "-t", "-e", str(tmp_path / "error.log"), "-c", str(etc / "nginx.conf")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
