"""`capsem-proxy` commands run in this process, through `capsem_proxy.cli.main(argv)`, as a shell
would run them: in a given directory, with a given environment, their standard output and error
captured and their exit status returned. Starting a new interpreter for each command (most of
it importing the package) is left to the few tests that are about the process itself."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from capsem_proxy.cli import main

__all__ = ["run_cli"]


def run_cli(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`capsem-proxy ARGS` run in `cwd` with exactly the environment `env`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_environment, saved_directory = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                status = main(args)
            except SystemExit as exit_:  # argparse's usage errors, --help, --version
                status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if isinstance(exit_.code, str):
                    print(exit_.code, file=stderr)
    finally:
        os.chdir(saved_directory)
        os.environ.clear()
        os.environ.update(saved_environment)
    return subprocess.CompletedProcess(["capsem-proxy", *args], status, stdout.getvalue(), stderr.getvalue())
