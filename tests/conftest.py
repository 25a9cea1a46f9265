import os

# Deterministic, quiet runs on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory):
    """The parse cache (e2sim/parse_cache.py) of the test session lives in a temporary folder, not in the
    user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("E2SIM_CACHE_DIR", str(tmp_path_factory.mktemp("parse_cache")))
    yield
    mp.undo()


class CliResult:
    """Exit code and captured output of one in-process CLI call (unpacks as ``code, out, err``)."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def __iter__(self):
        return iter((self.returncode, self.stdout, self.stderr))


def run_cli(argv, capsys) -> CliResult:
    """Runs the CLI in-process (``e2sim.cli.main``: the same error handling as the console script)."""
    from e2sim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return CliResult(exc.value.code, out, err)


@pytest.fixture
def e2sim(capsys):
    """``run_cli`` as a fixture: ``e2sim("estimate", ...)``."""
    return lambda *args: run_cli(args, capsys)
