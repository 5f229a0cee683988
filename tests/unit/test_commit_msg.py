"""The commit-msg hook refuses what the project's log must not hold again: long subjects and
messages with no body."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
HOOK = Path(__file__).resolve().parents[2] / ".ci" / "commit-msg"


def verdict(tmp_path: Path, message: str) -> tuple[int, str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    done = subprocess.run(
        [sys.executable, str(HOOK), str(path)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("message", "ok"),
    [
        ("Worker: commit only the finished prefix\n\nA rebalance could lose work.\n", True),
        ("x" * 72 + "\n\nwhy\n", True),
        ("x" * 73 + "\n\nwhy\n", False),
        ("Worker: commit only the finished prefix\n", False),  # no body
        ("Subject\nbody without a blank line\n", False),
        ("Subject ends with a stop.\n\nwhy\n", False),
        ("\n\n# only comments\n", False),
        ("Subject\n\n# Please enter the commit message\nwhy it changed\n", True),
        ("Merge branch 'x' into main\n", True),
        ("fixup! " + "x" * 80 + "\n", True),
    ],
)
def test_the_hook_judges_the_shape(tmp_path: Path, message: str, ok: bool) -> None:
    rc, err = verdict(tmp_path, message)
    assert (rc == 0) == ok, err
    assert bool(err) != ok
