"""The man pages are built from the parsers and the key reference, and mandoc reads them
without a warning."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hacluster import cli, manpages
from hacluster.config import reference as ref


def _render(path: Path) -> str:
    """The page as `man` shows it, as plain text."""
    assert shutil.which("mandoc"), "mandoc is missing: deploy/install-deps.sh installs it"
    res = subprocess.run(["mandoc", "-T", "ascii", "-O", "width=100", str(path)],
                         capture_output=True, text=True, timeout=30, check=True)
    return re.sub(r".\x08", "", res.stdout)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    assert manpages.main([str(out)]) == 0
    return out


@pytest.mark.parametrize("name", manpages.PAGES)
def test_mandoc_reads_the_page_without_a_warning(pages: Path, name: str) -> None:
    res = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(pages / name)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.stdout + res.stderr == ""
    assert res.returncode == 0


def test_hacluster_8_has_every_command_and_option_of_the_parser(pages: Path) -> None:
    text = _render(pages / "hacluster.8")
    parser = cli.build_parser()
    found = list(manpages.commands(parser))
    assert {"hacluster run", "hacluster check-config", "hacluster ipvs list",
            "hacluster lab drill"} <= {name for name, _p, _h in found}
    for name, sub, _help in found:
        assert f"\n   {name}\n" in text, name
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, f"{name} {option}"
    assert "--version" in text
    section = text[text.index("   hacluster check-config\n"):]
    section = section[:section.index("   hacluster import-keepalived\n")]
    print(section)
    assert "-f, --config, --file FILE" in section
    assert "Validate a configuration file." in section


def test_hacluster_yaml_5_has_every_key_of_the_reference(pages: Path) -> None:
    text = _render(pages / "hacluster.yaml.5")
    for container in ref.CONTAINERS:
        assert f"\n{container.path.upper()}\n" in text, container.path
        for entry in ref.entries(container):
            tag = re.compile(rf"\n {{7}}{re.escape(entry.key)}[ \n]")
            assert tag.search(text), f"{container.path}.{entry.key}"
    section = text[text.index("       priority\n"):]
    section = section[:section.index("       advert_int\n")]
    print(section)
    assert "Election priority; 255 is the address owner." in section
    assert "Type: integer 1..255. Default: 100. keepalived: priority." in section
    assert "Example: priority: 150" in section


def test_roff_escaping() -> None:
    assert manpages.esc(".start 'quote -x a\\b") == "\\&.start 'quote \\-x a\\eb"
    assert manpages.esc("a\n.b\n'c") == "a\n\\&.b\n\\&'c"
    assert manpages.inline("see `check-config` and [x](y.md), *em*") == (
        "see \\fBcheck\\-config\\fR and x, \\fIem\\fR"
    )
