"""The docs name every flag the code has, so operators never meet an undocumented one."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from portway.cli.main import main
from portway.cli.serve import serve

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
