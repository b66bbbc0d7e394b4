"""The bad-input corpus: shared harness.

Every case feeds gdask one deliberately bad input and asserts, through
:func:`assert_clean_failure`, what a user must see: a non-zero exit code,
one clear line naming the file / OBS_ID / field at fault, and no traceback.
Cases that start from good data also check that nothing already stored was
lost (each module does that with its own store fixtures).

Two ways to run the CLI:

- :func:`run_cli` calls ``gdask.cli.main`` in this process (fast). An
  exception escaping ``main`` is what a user would see as a traceback, so it
  is recorded as one.
- :func:`run_cli_subprocess` runs ``python -m gdask.cli`` in a child process,
  for cases that need a real process (signals, BrokenPipe, encodings).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    """What one CLI invocation returned and printed."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(args: list[str]) -> CliResult:
    """Run ``gdask ARGS`` in-process; an escaping exception becomes a printed traceback."""
    from gdask.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # what the user would see as a traceback
            traceback.print_exc(file=err)
            code = 1
    return CliResult(int(code), out.getvalue(), err.getvalue())


def run_cli_subprocess(
    args: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    stdin: str | None = None,
) -> CliResult:
    """Run ``python -m gdask.cli ARGS`` in a child process."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "gdask.cli", *[str(a) for a in args]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_failure(result: CliResult, *names: object) -> None:
    """A non-zero exit, no traceback, and every one of ``names`` in the output.

    ``names`` are what the message must name: a file name, an OBS_ID, a
    field (column, HDU, keyword, config key, parameter).
    """
    text = result.text
    assert result.code != 0, f"exit code 0 for a bad input; output:\n{text}"
    assert "Traceback" not in text, f"a traceback was printed:\n{text}"
    for name in names:
        assert str(name) in text, f"{name!r} is not named in the message:\n{text}"
