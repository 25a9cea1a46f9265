"""Command line: parses options, calls one stage function, prints what it returns.

Commands are loaded lazily from their modules (``e2sim/commands/*.py``) so that ``e2sim estimate``
never imports torch or numba. Any :class:`E2simError` becomes one line on stderr and exit code 2; anything
unexpected becomes one line naming the internal error and asking for a bug report, exit code 1 (the raw
traceback only with ``E2SIM_DEBUG=1``).
"""
from __future__ import annotations

import importlib
import os
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
    "import": "e2sim.commands.import_model:import_model",
    "study": "e2sim.commands.study:study",
}


def _docstring(target: str) -> str | None:
    """The docstring of a command's function read from its module's source, without importing the module
    (which would import numpy, pydantic, ...): ``e2sim --help`` lists every command. None if not found (the
    command is then imported to ask it). tests/test_cli_startup.py checks it against each command's help."""
    import importlib.util
    import inspect
    import re

    mod, attr = target.split(":")
    try:
        spec = importlib.util.find_spec(mod)
        with open(spec.origin, encoding="utf-8") as f:
            src = f.read()
    except (ImportError, AttributeError, TypeError, OSError):
        return None
    m = re.search(rf'^def {re.escape(attr)}\(.*?"""(.*?)"""', src, re.S | re.M)
    return inspect.cleandoc(m.group(1)) if m else None


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            text = _docstring(COMMANDS[name])
            if text is None:
                cmd = self.get_command(ctx, name)
                if cmd is None or cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=text).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod, attr = target.split(":")
        return getattr(importlib.import_module(mod), attr)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EOFError as exc:
            # click would turn it into Abort ("aborted", exit 130) after printing an empty line; an
            # EOFError from the code (a truncated file read by a library) is an internal error instead.
            raise _Unexpected(exc) from exc


class _Unexpected(Exception):
    """Carries an exception click would otherwise reinterpret."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.original = exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="e2sim")
def cli() -> None:
    """e2sim: energy and time of CNN training on small devices, and what E2-Train saves."""


BUG_EXIT_CODE = 1


def _one_line(text: str) -> str:
    """Newlines and other control characters in a message become spaces: a message is one stderr line."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())


def _fail(message: str) -> None:
    click.echo(f"e2sim: {_one_line(message)}", err=True)


def _internal(exc: BaseException) -> int:
    _fail(f"internal error: {type(exc).__name__}: {exc} -- this is a bug in e2sim; please report it with the "
          "command line (set E2SIM_DEBUG=1 for the traceback)")
    return BUG_EXIT_CODE


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; every way out prints at most one line on stderr."""
    debug = os.environ.get("E2SIM_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="e2sim", standalone_mode=False)
    except E2simError as exc:
        _fail(f"error: {exc}")
        return exc.exit_code
    except click.exceptions.Abort:
        _fail("aborted")
        return 130
    except click.ClickException as exc:
        # Usage errors (bad option values, missing options) are one line and exit code 2 as well.
        _fail(f"error: {exc.format_message()}")
        return exc.exit_code
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a raw traceback by default
        if debug:
            raise
        return _internal(exc.original if isinstance(exc, _Unexpected) else exc)
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))
