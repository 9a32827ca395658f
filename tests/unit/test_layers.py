"""The direction of imports, read from the source (every import, at the top or in a function).

- `vrrp/` and `healthchecks/` import neither `hacluster/` nor each other: each is a
  library usable alone.
- The control API (`hacluster.api`) sits on top: the types it shares with the roles live
  below both (`hacluster.apitypes`), and only the composition root that serves it, the
  reload that moves its listeners and the command-line client import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The modules that may import `hacluster.api`.
API_IMPORTERS = {
    "hacluster/daemon.py",  # builds and serves it
    "hacluster/reload_coordinator.py",  # moves its listeners on a reload
    "hacluster/commands/daemon_client.py",  # the command line's client of it
}


def _module(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(path: Path, root: Path = REPO) -> set[str]:
    """Every module `path` (under `root`) imports, and every name it imports from a
    module as module.name (`from hacluster import api` is `hacluster.api`)."""
    module_path = _module(path, root)
    package = module_path if path.name == "__init__.py" else module_path[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize(("package", "others"), [
    ("vrrp", {"hacluster", "healthchecks"}),
    ("healthchecks", {"hacluster", "vrrp"}),
])
def test_the_libraries_import_nothing_above_nor_each_other(package: str,
                                                           others: set[str]) -> None:
    found = {f"{path.relative_to(REPO)}: {name}"
             for path in _sources(package) for name in imported(path)
             if name.split(".")[0] in others}
    assert not found, sorted(found)


def test_only_the_composition_root_and_the_client_import_the_api() -> None:
    found = {str(path.relative_to(REPO)) for path in _sources("hacluster")
             if "hacluster.api" in imported(path)}
    found.discard("hacluster/api.py")
    assert found <= API_IMPORTERS, sorted(found - API_IMPORTERS)


def test_the_reading_finds_every_form_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    sample = pkg / "m.py"
    sample.write_text("import a.b\nfrom c import d\nfrom . import e\n"
                      "def f():\n    from .g import h\n")
    assert imported(sample, tmp_path) >= {"a.b", "c.d", "p.e", "p.g.h"}
