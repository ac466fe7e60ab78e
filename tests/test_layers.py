"""Imports point one way (STYLE.md): a walk over every module's imports keeps it true."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tidings"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    return _imports_of(path.read_text(), str(path))


def _imports_of(source: str, filename: str = "<source>") -> set[str]:
    tree = ast.parse(source, filename=filename)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}

# (importer prefix, forbidden import prefixes)
RULES = [
    (
        "tidings.domain",
        (
            "tidings.store",
            "tidings.services",
            "tidings.api",
            "tidings.web",
            "tidings.webhooks",
            "tidings.cli",
            "tidings.app",
            "tidings.events",
            "sqlalchemy",
            "fastapi",
            "aiohttp",
            "httptools",
        ),
    ),
    (
        "tidings.store",
        (
            "tidings.services",
            "tidings.api",
            "tidings.web",
            "tidings.webhooks",
            "tidings.cli",
            "tidings.app",
        ),
    ),
    (
        "tidings.services",
        (
            "tidings.api",
            "tidings.web",
            "tidings.cli",
            "tidings.app",
            "tidings.webhooks.worker",
            "tidings.webhooks.client",
            "tidings.webhooks.connection",
            "fastapi",
        ),
    ),
    (
        "tidings.webhooks",
        ("tidings.services", "tidings.api", "tidings.web", "tidings.cli", "tidings.app"),
    ),
    ("tidings.api", ("tidings.store", "tidings.web", "tidings.cli")),
    ("tidings.web", ("tidings.store", "tidings.api", "tidings.cli")),
    ("tidings.cli", ("tidings.api", "tidings.web")),
]

PURE_WEBHOOK_PARTS = [
    "matching",
    "payloads",
    "signing",
    "policy",
    "replies",
    "slack",
    "addresses",
    "response_urls",
]


def _violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if module == prefix or module.startswith(prefix + ".")
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize(("prefix", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports_point_one_way(prefix: str, forbidden: tuple[str, ...]) -> None:
    """No layer imports a layer above it."""
    assert _violations(prefix, forbidden) == []


# SQL and the drivers stay behind ``tidings.store``: layers above it name the connection a unit of
# work receives, and the errors they catch, through ``tidings.store.database``.
DATABASE_LIBRARIES = ("sqlalchemy", "sqlite3", "asyncpg", "psycopg", "alembic")


def _database_imports(modules: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in modules.items()
        if not (module == "tidings.store" or module.startswith("tidings.store."))
        for name in names
        if any(name == lib or name.startswith(lib + ".") for lib in DATABASE_LIBRARIES)
    )


def test_only_the_store_imports_sqlalchemy_or_a_driver() -> None:
    """sqlalchemy, sqlite3 and the PostgreSQL drivers are imported inside tidings.store only."""
    assert _database_imports(MODULES) == []


def test_the_store_rule_fails_on_a_violation() -> None:
    """The rule above reports an import it forbids (not a check that passes whatever it walks)."""
    source = "import sqlite3\nfrom sqlalchemy.exc import IntegrityError\nfrom tidings import ids\n"
    walked = {
        "tidings.services.example": _imports_of(source),
        "tidings.store.example": _imports_of(source),
    }
    assert _database_imports(walked) == [
        "tidings.services.example imports sqlalchemy.exc",
        "tidings.services.example imports sqlalchemy.exc.IntegrityError",
        "tidings.services.example imports sqlite3",
    ]


def test_only_the_webhook_client_speaks_http_outward() -> None:
    """HTTP client code lives in one module (the webhook client's connection), and only the
    webhook client uses it."""
    libraries = ("aiohttp", "httpx", "requests", "urllib.request", "http.client", "httptools")
    speakers = sorted(
        module
        for module, names in MODULES.items()
        if any(n == lib or n.startswith(lib + ".") for n in names for lib in libraries)
    )
    assert speakers == ["tidings.webhooks.connection"]
    users = sorted(
        module
        for module, names in MODULES.items()
        if any(n.startswith("tidings.webhooks.connection") for n in names)
    )
    assert users == ["tidings.webhooks.client"]


@pytest.mark.parametrize("part", PURE_WEBHOOK_PARTS)
def test_pure_webhook_parts_do_no_io(part: str) -> None:
    """The pure parts import no database, HTTP or event-hub code."""
    names = MODULES[f"tidings.webhooks.{part}"]
    io = (
        "tidings.store",
        "tidings.events",
        "sqlalchemy",
        "aiohttp",
        "tidings.webhooks.client",
        "tidings.webhooks.delivery",
        "socket",
        "psutil",
    )
    assert sorted(n for n in names if any(n == x or n.startswith(x + ".") for x in io)) == []


def test_a_single_attempt_needs_no_database() -> None:
    """webhooks/delivery.py reaches storage only through what the worker hands it."""
    names = MODULES["tidings.webhooks.delivery"]
    assert sorted(n for n in names if n.startswith(("tidings.store", "tidings.services"))) == []
