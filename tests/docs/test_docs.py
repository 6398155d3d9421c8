"""The docs name every flag the code has, so operators never meet an undocumented one."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from portway.cli.main import main
from portway.cli.serve import serve
from portway.runtime.configfile import dump
from portway.runtime.settings import SETTINGS, Setting

DOCS = Path(__file__).resolve().parents[2] / "docs"


def flags(command: click.Command) -> list[str]:
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    ]


@pytest.mark.parametrize("flag", flags(serve))
def test_every_serve_flag_is_in_running_md(flag: str) -> None:
    assert f"`{flag}" in (DOCS / "running.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_every_setting_has_its_row_in_running_md(setting: Setting) -> None:
    rows = [r for r in (DOCS / "running.md").read_text().splitlines() if r.startswith("| `--")]
    mine = [
        r
        for r in rows
        if r.startswith(f"| `{setting.flag} ") or r.startswith(f"| `{setting.flag}`")
    ]
    assert len(mine) == 1, setting.flag
    cells = [c.strip() for c in mine[0].strip("|").split("|")]
    assert cells[1] == f"`{setting.envvar}`"
    assert cells[2] == f"`{setting.key}`"
    assert cells[4] == ("live" if setting.live else "restart")


def test_running_md_example_is_the_complete_default_config() -> None:
    """The example file is what ``--check-config`` prints for the defaults, so it lists
    every key with its true default and help."""
    text = (DOCS / "running.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert example == dump({s.key: s.default for s in SETTINGS})


@pytest.mark.parametrize("flag", flags(main))
def test_every_client_option_is_in_cli_md(flag: str) -> None:
    assert flag in (DOCS / "cli.md").read_text()


def test_every_client_command_is_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text()
    assert isinstance(main, click.Group)
    for name, group in main.commands.items():
        if name == "serve":
            continue
        assert isinstance(group, click.Group)
        for sub in group.commands:
            assert f"portway {name} {sub}" in text, f"portway {name} {sub}"
