"""The documentation lives in the repository: links resolve inside it, and the contract's
example file is one the loader accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hacluster.config.loader import parse_config

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_point_inside_the_repository(doc: Path) -> None:
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        path, _, _anchor = target.partition("#")
        if not path:
            continue  # an anchor in the same file
        assert "://" not in path, f"{doc.name}: link leaves the repository: {target}"
        resolved = (doc.parent / path).resolve()
        assert resolved.is_relative_to(REPO), f"{doc.name}: {target} is outside the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"


def test_readme_points_to_the_configuration_docs_in_the_repository() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "shared docs" not in readme
    assert "[docs/CONFIG.md](docs/CONFIG.md)" in readme
    assert "[docs/configuration.md](docs/configuration.md)" in readme


def test_contract_example_is_a_valid_file() -> None:
    text = (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert match is not None
    config = parse_config(match.group(1), "docs/CONFIG.md")
    assert set(config.vrrp_instances) == {"VI_1", "VI_2"}
    assert len(config.virtual_servers[0].real_servers) == 3
