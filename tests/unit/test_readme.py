"""README.md's "Command line" section lists every command the CLI has."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from sekisho.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands(command: object, prefix: str) -> list[str]:
    if isinstance(command, TyperGroup):
        return [
            name
            for sub_name, sub in sorted(command.commands.items())
            for name in _commands(sub, f"{prefix} {sub_name}")
        ]
    return [prefix]


def test_readme_lists_every_command() -> None:
    section = README.read_text(encoding="utf-8").split("## Command line", 1)[1]
    commands = _commands(typer.main.get_command(app), "sekisho")
    assert len(commands) > 10
    missing = [name for name in commands if f"`{name}" not in section]
    assert not missing, missing
