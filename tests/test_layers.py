"""Imports point one way (STYLE.md): a walk over every module's imports keeps it true."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tidings"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
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

PURE_WEBHOOK_PARTS = ["matching", "payloads", "signing", "policy", "replies", "slack", "addresses"]


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


def test_only_the_webhook_client_speaks_http_outward() -> None:
    """aiohttp and httpx appear in exactly one module of the package: the webhook client."""
    users = sorted(
        module
        for module, names in MODULES.items()
        if any(
            n == lib or n.startswith(lib + ".")
            for n in names
            for lib in ("aiohttp", "httpx", "requests", "urllib.request")
        )
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
        "tidings.webhooks.queue",
        "socket",
        "psutil",
    )
    assert sorted(n for n in names if any(n == x or n.startswith(x + ".") for x in io)) == []
