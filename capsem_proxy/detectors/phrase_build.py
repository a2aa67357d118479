"""Builds a signature file's phrase automata in a child process and hands them back pickled.

Expanding the shipped signature file makes a few hundred thousand short-lived strings, lists and
dicts among the automata's nodes; Python's allocator keeps the memory they were made in, so a
process that builds the automata itself ends some 50 MiB larger, one that unpickles them some
20 MiB (and in a twentieth of the CPU time). Every worker loads the signatures once, at start.

The child is this interpreter running this module on the signature text given on its standard
input; what it writes back is unpickled, which is safe only because it comes from our own child.
When the child cannot run or fails, the caller builds the automata in its own process (same
tables, more memory), so a broken file still raises its usual error there.

With `CAPSEM_PROXY_TABLE_CACHE` naming a directory, what a child wrote back is also kept there,
and a later start (another worker, a restart) reads it instead of building again: a few hundred
milliseconds instead of two seconds of CPU. A kept file is named by a digest of everything the
tables are built from: the signature text, the package's source files and data, the versions of
Python and pyahocorasick, so a change to any of them builds anew. Being unpickled, the files are
read only from a directory of this user's that nobody else may write to, and only when they are
this user's and nobody else's to write either; anything else is ignored (and built as without
the directory).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capsem_proxy.detectors.injection import PhraseTables

__all__ = ["CACHE_ENV_VAR", "build_in_child"]

logger = logging.getLogger(__name__)

# The shipped file takes about 1.5 s; a machine busy enough to take a minute is better served
# by building in-process than by waiting longer.
_TIMEOUT_SECONDS = 60.0


# The directory where built tables are kept between starts (none when unset).
CACHE_ENV_VAR = "CAPSEM_PROXY_TABLE_CACHE"
# Changed when what a kept file holds changes in a way its digest would not see.
_CACHE_FORMAT = b"capsem-proxy phrase tables 1"


def build_in_child(signature_text: str) -> PhraseTables | None:
    """The phrase tables of `signature_text` (a signature file's YAML), built in a child process
    (or read from the `CAPSEM_PROXY_TABLE_CACHE` directory); None when the child could not build them."""
    from capsem_proxy.detectors.injection import PhraseTables

    directory = _cache_directory()
    kept = _kept_path(directory, signature_text) if directory is not None else None
    if kept is not None:
        data = _read_kept(kept)
        if data is not None:
            try:
                tables = pickle.loads(data)
            except Exception as exc:  # a file cut short, or of classes since changed: built anew
                logger.debug("injection signatures: ignoring %s (%s)", kept, type(exc).__name__)
            else:
                if isinstance(tables, PhraseTables):
                    return tables
    done = _run_child(signature_text)
    if done is None:
        return None
    tables = pickle.loads(done)
    if not isinstance(tables, PhraseTables):
        return None
    if kept is not None:
        _keep(kept, done)
    return tables


def _run_child(signature_text: str) -> bytes | None:
    """What the child writes back for `signature_text`: the pickled tables; None when it failed."""
    package_root = str(Path(__file__).resolve().parents[2])
    environment = dict(os.environ)
    # The child imports this very copy of the package, wherever the parent found it.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__], input=signature_text.encode("utf-8"), capture_output=True,
            env=environment, timeout=_TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("injection signatures: building the phrase tables in a child process failed (%s); "
                       "building them here", type(exc).__name__)
        return None
    if done.returncode != 0:
        # A broken file fails here too; the in-process build that follows reports why.
        logger.debug("injection signatures: the child process exited with %s", done.returncode)
        return None
    return done.stdout


def _cache_directory() -> Path | None:
    """The `CAPSEM_PROXY_TABLE_CACHE` directory, made if missing; None when unset, or when it is
    not this user's own directory that only this user may write to."""
    name = os.environ.get(CACHE_ENV_VAR)
    if not name:
        return None
    directory = Path(name)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = directory.lstat()
    except OSError as exc:
        logger.warning("%s=%s cannot be used (%s): the phrase tables are built at every start",
                       CACHE_ENV_VAR, name, exc.strerror or type(exc).__name__)
        return None
    if not stat.S_ISDIR(status.st_mode) or not _private(status):
        logger.warning("%s=%s is not a directory of this user's that only this user may write to: the "
                       "phrase tables are built at every start", CACHE_ENV_VAR, name)
        return None
    return directory


def _private(status: os.stat_result) -> bool:
    """Owned by this user, and neither its group nor others may write to it."""
    return status.st_uid == os.geteuid() and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _kept_path(directory: Path, signature_text: str) -> Path | None:
    """Where the tables of `signature_text` are kept in `directory`; None when what they are built
    from cannot be read."""
    try:
        return directory / f"{_digest(signature_text)}.pickle"
    except (OSError, metadata.PackageNotFoundError) as exc:
        logger.warning("%s: cannot tell what the phrase tables are built from (%s): they are built at every "
                       "start", CACHE_ENV_VAR, type(exc).__name__)
        return None


def _digest(signature_text: str) -> str:
    """A digest of everything the tables of `signature_text` are built from."""
    digest = hashlib.sha256(_CACHE_FORMAT)
    for part in (sys.version, metadata.version("pyahocorasick"), signature_text):
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
    package = Path(__file__).resolve().parents[1]
    sources = sorted([*package.rglob("*.py"), *(package / "detectors" / "data").glob("*.tsv")])
    for path in sources:
        data = path.read_bytes()
        name = path.relative_to(package).as_posix().encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _read_kept(path: Path) -> bytes | None:
    """The bytes of a kept file, when it is a regular file of this user's nobody else may write to."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as kept:
        status = os.fstat(kept.fileno())
        if not stat.S_ISREG(status.st_mode) or not _private(status):
            logger.warning("injection signatures: ignoring %s: not a file of this user's only", path)
            return None
        return kept.read()


def _keep(path: Path, data: bytes) -> None:
    """Writes `data` to `path` whole or not at all (a reader never sees a file half written)."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".building-", suffix=".pickle")
        try:
            with os.fdopen(descriptor, "wb") as kept:
                kept.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        logger.debug("injection signatures: could not keep the phrase tables in %s (%s)", path.parent,
                     exc.strerror or type(exc).__name__)


def _main() -> None:
    import yaml

    from capsem_proxy.detectors.injection import build_phrase_tables

    spec = yaml.safe_load(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdout.buffer.write(pickle.dumps(build_phrase_tables(spec), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _main()
