"""Every option of prodcat's command lines says what it does: the manage.py prodcat_*
commands and ``python -m prodcat_django.ml``; ``evaluate --help`` describes the CSV format."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from django.core.management import get_commands, load_command_class

# Django's own options (--settings, --traceback, ...) are documented by Django.
DJANGO_OPTIONS = {
    "--version",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
}


def undocumented(parser: argparse.ArgumentParser, where: str) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from undocumented(sub, f"{where} {name}")
            continue
        if DJANGO_OPTIONS & set(action.option_strings):
            continue
        if not action.help:
            yield f"{where} {'/'.join(action.option_strings) or action.dest}"


def test_every_management_command_option_has_help():
    names = [name for name in get_commands() if name.startswith("prodcat_")]
    assert "prodcat_backfill" in names and "prodcat_verify_checkpoint" in names
    missing = []
    for name in names:
        command = load_command_class(get_commands()[name], name)
        assert command.help, name
        missing += undocumented(command.create_parser("manage.py", name), name)
    assert missing == []


def test_every_ml_cli_option_has_help():
    from prodcat_django.ml.cli import build_parser

    assert list(undocumented(build_parser(), "python -m prodcat_django.ml")) == []


def test_evaluate_help_describes_the_csv_format():
    result = subprocess.run(
        [sys.executable, "-m", "prodcat_django.ml", "evaluate", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for column in ("id ", "title ", "label ", "image "):
        assert column in result.stdout
    assert "relative to the CSV's folder" in result.stdout
    assert "id,title,label,image" in result.stdout
