"""docs/configuration.md follows the loader: every key it reads is documented, every example
and default there is what the loader does, and the committed file is the generated one."""

from __future__ import annotations

import difflib
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.config import keydocs
from hacluster.config import loader as ld
from hacluster.config import model as m
from hacluster.config import reference as ref
from hacluster.config.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "configuration.md"

ALL_KEYS = [(c, key) for c in ref.CONTAINERS for key in ref.keys_of(c)]


def _id(item: tuple[ref.Container, str]) -> str:
    return f"{item[0].path}.{item[1]}"


def _load(container: ref.Container, entry: dict[str, Any]) -> m.Config:
    text = yaml.safe_dump(container.place(entry), sort_keys=False)
    try:
        return ld.parse_config(text, "example.yaml")
    except ConfigError as exc:
        raise AssertionError(f"{text}\n{exc}") from None


def test_committed_reference_is_the_generated_one() -> None:
    generated = ref.render_markdown()
    committed = DOC.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(
        committed.splitlines(keepends=True), generated.splitlines(keepends=True),
        "docs/configuration.md (committed)", "generated",
    ))
    assert not diff, f"run `python -m hacluster.config.reference`:\n{diff}"


def test_every_key_the_loader_reads_has_its_text() -> None:
    missing = []
    for container, key in ALL_KEYS:
        try:
            ref.entry_for(container, key)
        except ref.MissingKeyDoc as exc:
            missing.append(str(exc))
    assert not missing, "\n".join(missing)


def test_every_keydoc_is_for_a_key_the_loader_reads() -> None:
    used = set()
    for container, key in ALL_KEYS:
        if container.cls is None or key in container.extra_keys:
            continue
        for klass in container.cls.__mro__:
            if (klass.__name__, key) in keydocs.KEYS:
                used.add((klass.__name__, key))
    assert set(keydocs.KEYS) - used == set()


def test_every_mapping_class_of_the_model_is_a_section() -> None:
    """A new nested mapping in the model (a new section, a new sub-block) needs a section."""
    documented = {c.cls for c in ref.CONTAINERS if c.cls is not None}
    seen: set[type[Any]] = set()

    def walk(hint: Any) -> None:
        for arg in typing.get_args(hint):
            walk(arg)
        if isinstance(hint, type) and is_dataclass(hint) and hint not in seen:
            seen.add(hint)
            for f in fields(hint):
                if not f.metadata.get("derived"):
                    walk(ld._hints(hint)[f.name])

    walk(m.Config)
    seen |= set(m.CHECKER_TYPES)
    undocumented = seen - documented - set(ref.VALUE_CLASSES) - {m.Config}
    assert not undocumented, f"no reference section for {sorted(c.__name__ for c in undocumented)}"
    tops = {c.path.split(".")[0].removesuffix("[]") for c in ref.CONTAINERS}
    assert set(ld._SECTIONS) <= tops
    assert set(ld.CHECKER_KEYS) <= {c.path.rsplit(".", 1)[-1] for c in ref.CONTAINERS}


def test_notify_mapping_keys_are_the_loaders() -> None:
    notify = next(c for c in ref.CONTAINERS if c.cls is None)
    assert tuple(notify.keys) == ld._NOTIFY_KEYS


def test_the_checks_field_is_not_a_key() -> None:
    """`checks` is built from the checker keys; written as a key it is refused, not a crash."""
    container = next(c for c in ref.CONTAINERS if c.cls is m.RealServer)
    with pytest.raises(ConfigError) as exc:
        ld.parse_config(yaml.safe_dump(container.place({"ip": "10.99.1.11", "checks": []})))
    assert [p.key_path for p in exc.value.problems] == ["virtual_servers[0].real_servers[0].checks"]
    assert "checks" not in ref.keys_of(container)


@pytest.mark.parametrize("item", ALL_KEYS, ids=_id)
def test_example_is_accepted_by_the_loader(item: tuple[ref.Container, str]) -> None:
    container, key = item
    e = ref.entry_for(container, key)
    value = yaml.safe_load(e.example)[key]
    entry = {**container.base, key: value}
    needs = e.doc.needs if e.doc is not None else {}
    for name, need in needs.items():
        if need is None:
            entry.pop(name, None)
        else:
            entry[name] = need
    config = _load(container, entry)
    assert container.pick(config) is not None


def _quotes_model_default(item: tuple[ref.Container, str]) -> bool:
    # A key without its text is reported by the test above, not at collection.
    try:
        return ref.entry_for(*item).quotes_model_default
    except ref.MissingKeyDoc:
        return False


@pytest.mark.parametrize("item", [i for i in ALL_KEYS if _quotes_model_default(i)], ids=_id)
def test_documented_default_is_what_the_loader_gives(item: tuple[ref.Container, str]) -> None:
    container, key = item
    assert container.cls is not None
    f = ld.yaml_fields(container.cls)[key]
    built = container.pick(_load(container, dict(container.base)))
    assert getattr(built, f.name) == ref._model_default(f)


def test_reference_rows_read_as_an_operator_sees_them() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = [
        "| `priority` | Election priority; 255 is the address owner. | integer 1..255 | 100 "
        "| `priority` | `priority: 150` |",
        "| `version` | VRRP version, 2 (RFC 3768, IPv4) or 3 (RFC 5798). | one of `2`, `3` "
        "| global_defs.vrrp_version; 3 for IPv6 | `version` | `version: 3` |",
        "| `dataplane` | Where virtual servers are carried out: the kernel's IPVS, an nftables "
        "table (`inet hacluster`) for kernels without IPVS, or nowhere (VRRP only). | one of "
        "`ipvs`, `nftables`, `none` | ipvs | none | `dataplane: nftables` |",
    ]
    for row in rows:
        print(row)
        assert row in text.splitlines()


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "configuration.md"
    assert ref.main(["-o", str(out), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert ref.main(["-o", str(out)]) == 0
    assert ref.main(["-o", str(out), "--check"]) == 0
    assert out.read_text() == ref.render_markdown()
