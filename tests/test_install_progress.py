"""`make install` (and so `make run` on a fresh clone) shows what pip is doing in a few lines, keeps
pip's whole output in .venv/install.log, and on failure prints pip's last lines and its exit status."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from scripts.pip_progress import run

ROOT = Path(__file__).resolve().parents[1]

# What pip prints for an install of a few packages (a real run prints about 350 such lines).
PIP_OUTPUT = """\
Obtaining file:///work/capsem-proxy
  Installing build dependencies: started
  Installing build dependencies: finished with status 'done'
WARNING: Location 'file:///opt/simple/aiohttp/' is ignored: it is neither a file nor a directory.
Collecting aiohttp>=3.10 (from capsem-proxy==0.2.0)
  Downloading https://files.example/aiohttp-3.12.15-cp311-manylinux.whl (1.7 MB)
Collecting uvicorn>=0.30 (from capsem-proxy==0.2.0)
  Using cached uvicorn-0.35.0-py3-none-any.whl.metadata (6.5 kB)
Requirement already satisfied: pip in ./.venv/lib/python3.11/site-packages (25.2)
Collecting orjson>=3.10 (from capsem-proxy==0.2.0)
Building wheels for collected packages: capsem-proxy
  Building editable for capsem-proxy (pyproject.toml): started
  Building editable for capsem-proxy (pyproject.toml): finished with status 'done'
Successfully built capsem-proxy
Installing collected packages: orjson, uvicorn, aiohttp, capsem-proxy
Successfully installed aiohttp-3.12.15 capsem-proxy-0.2.0 orjson-3.11.0 uvicorn-0.35.0
"""


def _fake_pip(tmp_path: Path, status: int = 0, extra: str = "") -> list[str]:
    script = tmp_path / "fake_pip.py"
    script.write_text(
        f"import sys\nsys.stdout.write({(PIP_OUTPUT + extra)!r})\nsys.exit({status})\n", encoding="utf-8"
    )
    return [sys.executable, str(script)]


def test_a_pipe_gets_one_line_per_phase_and_the_log_gets_everything(tmp_path):
    out = io.StringIO()
    log = tmp_path / "install.log"
    assert run(_fake_pip(tmp_path), str(log), "capsem-proxy", out, on_terminal=False) == 0
    shown = out.getvalue().splitlines()
    phases = [line.split(": ", 1)[1].split(" (")[0] for line in shown[:-1]]
    assert phases == ["preparing", "resolving dependencies", "building, capsem-proxy", "installing, 4 packages"]
    assert "resolving dependencies (1 package so far" in shown[1]
    assert shown[-1].startswith("  capsem-proxy: done, 4 packages installed in ")
    assert shown[-1].endswith(f", 1 warning in the log (pip's output: {log})")
    logged = log.read_text()
    assert all(line in logged for line in PIP_OUTPUT.splitlines())
    assert len(shown) < len(PIP_OUTPUT.splitlines()) / 2


def test_a_terminal_gets_one_line_redrawn_in_place(tmp_path):
    out = io.StringIO()
    assert run(_fake_pip(tmp_path), str(tmp_path / "install.log"), "capsem-proxy", out, on_terminal=True) == 0
    text = out.getvalue()
    assert text.count("\n") == 1  # only the closing line ends a line
    assert "\r\x1b[K  capsem-proxy: resolving dependencies, downloading aiohttp-3.12.15-cp311-manylinux.whl (1.7 MB)" \
        in text
    assert "\r\x1b[K  capsem-proxy: resolving dependencies, orjson (4 packages so far" in text


def test_a_failing_pip_shows_its_last_lines_and_its_status(tmp_path):
    out = io.StringIO()
    log = tmp_path / "install.log"
    error = "ERROR: Could not find a version that satisfies the requirement regopy>=1.5\n"
    status = run(_fake_pip(tmp_path, status=1, extra=error), str(log), "capsem-proxy", out, on_terminal=False)
    assert status == 1
    text = out.getvalue()
    assert "capsem-proxy: pip failed with exit status 1; its last lines:" in text
    assert "    ERROR: Could not find a version that satisfies the requirement regopy>=1.5" in text
    assert f"pip's whole output: {log}" in text


def test_a_missing_command_is_reported_not_raised(tmp_path):
    out = io.StringIO()
    assert run([str(tmp_path / "no-such-pip")], str(tmp_path / "log"), "pip itself", out, on_terminal=False) == 127
    assert "pip itself: cannot run" in out.getvalue()


def test_make_install_uses_the_progress_display_and_never_a_silent_pip():
    commands = subprocess.run(
        ["make", "-n", "-B", "install", "VENV=/nonexistent/venv"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout
    pip_lines = [line for line in commands.splitlines() if "pip install" in line]
    assert len(pip_lines) == 2
    for line in pip_lines:
        assert "scripts/pip_progress.py --log /nonexistent/venv/install.log" in line
        assert "--quiet" not in line and " -q " not in line
    assert "Installing capsem-proxy and its dependencies" in commands
