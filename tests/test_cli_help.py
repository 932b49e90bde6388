"""`bench --help` and each group's help show every command's summary whole."""

import click

from bench.cli.main import cli

LIMIT = 45
"""click cuts a docstring's first sentence at its first '. ' (``Figs.``) and at the terminal's width; 45 characters
fit beside the longest command name on an 80-column terminal."""


def commands(group: click.Group, prefix: str = "bench"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


def test_every_built_in_command_has_a_whole_short_summary():
    found = dict(commands(cli))
    assert {"bench run", "bench data", "bench data download", "bench sweep status"} <= set(found)
    bad = [f"{name}: {command.short_help!r}" for name, command in found.items()
           if not command.short_help or len(command.short_help) > LIMIT or command.short_help.endswith("...")]
    assert not bad, f"give these short_help= of at most {LIMIT} characters:\n" + "\n".join(bad)
    for name, command in found.items():
        assert command.get_short_help_str(limit=LIMIT) == command.short_help, name
