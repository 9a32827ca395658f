"""The Debian package: deploy/build-deb.sh builds it, `dpkg -i` installs it on this machine,
the installed command, example, unit and man pages work, and `dpkg --purge` removes it all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.deb

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
UNIT = Path("/lib/systemd/system/hacluster.service")
# A clean environment: nothing of this checkout's virtualenv or PATH leaks into the checks.
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "MANWIDTH": "80"}


def run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                         check=False, env=ENV, cwd="/")
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {res.returncode}:\n{res.stdout}{res.stderr}")
    return res


def _installed() -> bool:
    res = run("dpkg-query", "-W", "-f", "${Status}", "hacluster", check=False)
    return res.returncode == 0 and "installed" in res.stdout.split()


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    res = subprocess.run([str(REPO / "deploy" / "build-deb.sh"), str(out)], capture_output=True,
                         text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    path = Path(res.stdout.strip().splitlines()[-1])
    assert path.name == f"hacluster_{VERSION}_amd64.deb" and path.exists()
    return path


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root: installs the package with dpkg -i")
    if _installed():
        pytest.fail("a hacluster package is already installed here; this test installs and "
                    "purges its own, so remove it first (dpkg --purge hacluster)")
    try:
        run("dpkg", "-i", str(deb), timeout=300)
        yield deb
    finally:
        run("dpkg", "--purge", "hacluster", check=False, timeout=300)


def test_package_metadata_and_files(deb: Path) -> None:
    info = run("dpkg-deb", "-f", str(deb), "Package", "Version", "Depends").stdout
    print(info)
    assert "Package: hacluster\n" in info
    assert f"Version: {VERSION}\n" in info
    depends = [d.strip().split()[0] for d in info.split("Depends:")[1].split(",")]
    assert {"nftables", "iproute2", "ipvsadm", "python3"} <= set(depends)
    conffiles = run("dpkg-deb", "-I", str(deb), "conffiles").stdout
    assert conffiles == "/etc/hacluster/hacluster.yaml.example\n"
    listing = run("dpkg-deb", "-c", str(deb)).stdout
    for path in ("./usr/lib/hacluster/bin/hacluster", "./usr/sbin/hacluster -> "
                 "../lib/hacluster/bin/hacluster", "./lib/systemd/system/hacluster.service",
                 "./etc/hacluster/hacluster.yaml.example", "./usr/share/man/man8/hacluster.8.gz",
                 "./usr/share/man/man5/hacluster.yaml.5.gz",
                 "./usr/share/doc/hacluster/examples/strict.conf",
                 "./usr/share/bash-completion/completions/hacluster",
                 "./usr/share/doc/hacluster/changelog.gz",
                 "./usr/share/lintian/overrides/hacluster"):
        assert path in listing, path
    assert "/bin/pip" not in listing
    assert "__pycache__" not in listing  # compiled by postinst
    assert re.search(r"\./usr/lib/hacluster/bin/python3\.\d+ -> \.\./\.\./\.\./bin/python3\.\d+",
                     listing)


def test_lintian_finds_no_error(deb: Path) -> None:
    """Debian's package checker: no error, and no warning but those the package overrides
    with a reason (/usr/share/lintian/overrides/hacluster)."""
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (deploy/install-deps.sh installs it)")
    res = run("lintian", "--no-cfg", "--fail-on", "error,warning", "--tag-display-limit", "0",
              str(deb), check=False, timeout=600)
    print(res.stdout + res.stderr)
    tags = [line for line in res.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert res.returncode == 0 and not tags, "\n".join(tags[:40]) or res.stderr


def test_installed_command_version_and_check_config(installed: Path) -> None:
    res = run("hacluster", "--version")
    print(res.stdout, end="")
    assert res.stdout == f"hacluster {VERSION}\n"
    where = run("/usr/lib/hacluster/bin/python", "-c",
                "import hacluster, yaml; print(hacluster.__file__, yaml.__with_libyaml__)")
    assert where.stdout.startswith("/usr/lib/hacluster/lib/python3.")
    assert where.stdout.endswith(" True\n")  # PyYAML's C parser, on Debian's libyaml
    # postinst compiled the bytecode
    assert list(Path("/usr/lib/hacluster/lib").glob("python3.*/site-packages/hacluster/"
                                                    "__pycache__/cli.*.pyc"))
    conffiles = Path("/var/lib/dpkg/info/hacluster.conffiles").read_text().split()
    assert conffiles == ["/etc/hacluster/hacluster.yaml.example"]
    example = "/etc/hacluster/hacluster.yaml.example"
    res = run("hacluster", "check-config", "--offline", "-f", example)
    print(res.stdout, end="")
    assert res.stdout.startswith(f"{example}: valid\n")
    # On this machine too: whatever it lacks (IPVS, eth0) is reported as such, nothing else.
    res = run("hacluster", "check-config", "-f", example, check=False)
    print(res.stdout + res.stderr, end="")
    problems = [line for line in res.stderr.splitlines() if line.startswith(f"{example}:")
                and not re.match(rf"{re.escape(example)}: \d+ problems?$", line)]
    assert res.returncode == 0 or (problems and all("[this machine]" in p for p in problems))


def test_installed_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path) -> None:
    # With man pages checked: Documentation= names hacluster(8) and hacluster.yaml(5).
    res = run("systemd-analyze", "verify", str(UNIT), check=False)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr
    strict = Path("/usr/share/doc/hacluster/examples/strict.conf").read_text()
    merged = tmp_path / "hacluster.service"
    merged.write_text(UNIT.read_text() + "\n" + strict)
    res = run("systemd-analyze", "verify", str(merged), check=False)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr


def test_installed_man_pages_read_as_pages(installed: Path) -> None:
    for page, expect in (("hacluster", "hacluster check-config"),
                         ("hacluster.yaml", "virtual_router_id")):
        res = run("man", page)
        text = re.sub(r".\x08", "", res.stdout)
        print("\n".join(text.splitlines()[:8]))
        assert expect in text


def test_purge_removes_everything(installed: Path) -> None:
    run("dpkg", "--purge", "hacluster", timeout=300)
    assert not _installed()
    for path in ("/usr/lib/hacluster", "/usr/sbin/hacluster", "/etc/hacluster", str(UNIT),
                 "/usr/share/man/man8/hacluster.8.gz"):
        assert not os.path.lexists(path), f"{path} left behind"
