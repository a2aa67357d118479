"""Builds a signature file's phrase automata in a child process and hands them back pickled.

Expanding the shipped signature file makes a few hundred thousand short-lived strings, lists and
dicts among the automata's nodes; Python's allocator keeps the memory they were made in, so a
process that builds the automata itself ends some 50 MiB larger, one that unpickles them some
20 MiB (and in a twentieth of the CPU time). Every worker loads the signatures once, at start.

The child is this interpreter running this module on the signature text given on its standard
input; what it writes back is unpickled, which is safe only because it comes from our own child.
When the child cannot run or fails, the caller builds the automata in its own process (same
tables, more memory), so a broken file still raises its usual error there.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capsem_proxy.detectors.injection import PhraseTables

__all__ = ["build_in_child"]

logger = logging.getLogger(__name__)

# The shipped file takes about 1.5 s; a machine busy enough to take a minute is better served
# by building in-process than by waiting longer.
_TIMEOUT_SECONDS = 60.0


def build_in_child(signature_text: str) -> PhraseTables | None:
    """The phrase tables of `signature_text` (a signature file's YAML), built in a child process;
    None when the child could not build them."""
    from capsem_proxy.detectors.injection import PhraseTables

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
    tables = pickle.loads(done.stdout)
    return tables if isinstance(tables, PhraseTables) else None


def _main() -> None:
    import yaml

    from capsem_proxy.detectors.injection import build_phrase_tables

    spec = yaml.safe_load(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdout.buffer.write(pickle.dumps(build_phrase_tables(spec), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _main()
