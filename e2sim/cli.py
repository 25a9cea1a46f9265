"""Command line: parses options, calls one stage function, prints what it returns.

Commands are loaded lazily from their modules (``e2sim/commands/*.py``) so that ``e2sim estimate``
never imports torch or numba. Any :class:`E2simError` becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import importlib
import sys

import click

from .errors import E2simError

# command name -> "module:attribute"; each module defines one click command.
COMMANDS: dict[str, str] = {
    "workloads": "e2sim.commands.workloads:workloads",
    "counts": "e2sim.commands.counts:counts",
    "validate": "e2sim.commands.validate:validate",
    "calibrate": "e2sim.commands.calibrate:calibrate",
    "estimate": "e2sim.commands.estimate:estimate",
    "cycles": "e2sim.commands.cycles:cycles",
    "profiles": "e2sim.commands.profiles:profiles",
    "sweep": "e2sim.commands.sweep:sweep",
    "psg-accuracy": "e2sim.commands.psg_accuracy:psg_accuracy",
    "train": "e2sim.commands.train:train",
    "curves": "e2sim.commands.curves:curves",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod, attr = target.split(":")
        return getattr(importlib.import_module(mod), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="e2sim")
def cli() -> None:
    """e2sim: energy and time of CNN training on small devices, and what E2-Train saves."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="e2sim", standalone_mode=False)
    except E2simError as exc:
        click.echo(f"e2sim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("e2sim: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # Usage errors (bad option values, missing options) are one line and exit code 2 as well.
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"e2sim: error: {msg}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
