"""Process settings: one frozen ``Settings`` built once at start from ``TIDINGS_*`` variables.

These are the knobs an operator sets before the process starts (where to listen, which database).
What an admin changes at run time through the System Console lives in the database instead
(``tidings.domain.server_config``). No other module reads the environment.
"""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Start-up settings, validated once; secrets never appear in ``repr``."""

    model_config = SettingsConfigDict(env_prefix="TIDINGS_", frozen=True, extra="ignore")

    listen: str = "127.0.0.1:8065"
    data_dir: Path = Path("./data")
    database_url: str = Field(default="", repr=False)
    run_worker: bool = True
    worker_concurrency: int = Field(default=64, ge=1, le=4096)
    worker_batch_size: int = Field(default=100, ge=1, le=10_000)
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    worker_poll_interval_seconds: float = Field(default=0.2, gt=0)
    login_failures_per_minute: int = Field(default=10, ge=1)
    session_lifetime_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # How long this process trusts a session it read (tidings.services.session_cache): the
    # longest a change made by another process (the `tidings user` CLI, a second server) can go
    # unseen here. This process's own changes take effect at once. 0 reads every request's session.
    session_cache_seconds: float = Field(default=5.0, ge=0, le=3600)
    metrics_token: str = Field(default="", repr=False)
    # See tidings.process: how soon the database driver's thread gets the GIL back.
    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=8, le=4_194_304)
    gil_switch_interval_seconds: float = Field(default=0.0005, gt=0, le=0.1)
    # Post pages rendered at once (the rest wait their turn). Markdown rendering is pure Python
    # and holds the GIL: a second render at once gains no throughput, only takes GIL time from
    # the event loop, so one is the default.
    render_concurrency: int = Field(default=1, ge=1, le=64)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated addresses or
    # networks; empty: none, the TCP peer is the client). uvicorn's own default, made explicit so
    # no FORWARDED_ALLOW_IPS variable outside TIDINGS_* changes who the login limiter counts.
    forwarded_allow_ips: str = "127.0.0.1,::1"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("TIDINGS_LISTEN must be host:port, e.g. 127.0.0.1:8065")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tidings.db').resolve()}"

    @property
    def masked_database_url(self) -> str:
        """The database URL with any password replaced, safe for logs."""
        url = self.effective_database_url
        scheme, sep, rest = url.partition("://")
        if "@" not in rest:
            return url
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
