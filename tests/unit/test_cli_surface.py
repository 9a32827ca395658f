"""The command line as a whole: a description everywhere, one -f/--config, shell completion."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from hacluster.cli import build_parser
from hacluster.commands.common import DEFAULT_CONFIG

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))

#: Commands that read a hacluster configuration (or find the daemon through one).
WITH_CONFIG = {"run", "check-config", "status", "drain", "undrain", "maintenance", "reload",
               "ipvs list", "ipvs apply"}


def _commands(parser: argparse.ArgumentParser, prefix: str = ""
              ) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found[full] = sub
                found.update(_commands(sub, f"{full} "))
    return found


def test_every_subcommand_has_a_description() -> None:
    commands = _commands(build_parser())
    assert {"run", "check-config", "status", "drain", "undrain", "maintenance", "reload",
            "ipvs", "ipvs list", "ipvs apply", "lab", "lab up", "lab drill",
            "import-keepalived", "completion"} <= set(commands)
    missing = [name for name, p in commands.items() if not (p.description or "").strip()]
    assert missing == []


def test_config_is_the_same_option_with_the_same_default_everywhere() -> None:
    commands = _commands(build_parser())
    for name in sorted(WITH_CONFIG):
        (option,) = [a for a in commands[name]._actions if "-f" in a.option_strings]
        assert option.option_strings == ["-f", "--config", "--file"], name
        assert option.default == DEFAULT_CONFIG == Path("/etc/hacluster/hacluster.yaml"), name
        assert not option.required, name


def test_help_shows_the_description() -> None:
    res = subprocess.run([HACLUSTER, "drain", "--help"], capture_output=True, text=True,
                         timeout=30)
    print(res.stdout)
    assert res.returncode == 0
    assert "usage: hacluster drain [-h] [-f FILE]" in res.stdout
    assert "Drain a real server: its weight becomes 0" in res.stdout
    assert "--api URL" in res.stdout and "--token T" in res.stdout


def test_bash_completion_completes_commands_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "hacluster.bash"
    res = subprocess.run([HACLUSTER, "completion", "bash"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    script.write_text(res.stdout)

    def complete(*words: str) -> list[str]:
        probe = (f"source {script}; COMP_WORDS=(hacluster {' '.join(words)}); "
                 f"COMP_CWORD={len(words)}; _shtab_hacluster; echo \"${{COMPREPLY[@]}}\"")
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                             timeout=30)
        return out.stdout.split()

    assert complete("dr") == ["drain"]
    assert complete("maintenance", "VI_1", "o") == ["on", "off"]
    assert "--watch" in complete("status", "--w")
