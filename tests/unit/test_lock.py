"""requirements.lock holds what pyproject.toml asks for: every direct dependency of the core and
of the extras CI and `make dev` install is pinned there, at a version its specifier allows, and
every install (the Makefile's, the image's) goes through it. No network: the files alone."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
"""Where the lock is resolved for (`make lock`): CPython 3.11 on Linux x86_64."""


def makefile_variable(name: str) -> str:
    found = re.search(rf"^{name} \?= (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, name
    return found[1].strip()


def lock_extras() -> list[str]:
    return makefile_variable("LOCK_EXTRAS").split(",")


def declared(extras: list[str]) -> list[Requirement]:
    """The direct dependencies of the core and of `extras` that apply on the lock's target."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    wanted = [Requirement(line) for line in lines]
    return [r for r in wanted if r.marker is None or r.marker.evaluate(TARGET)]


def pins(lock: str) -> dict[str, Version]:
    """The lock's `name==version` lines, by canonical name; a line of any other form fails."""
    pinned: dict[str, Version] = {}
    for line in lock.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        name = canonicalize_name(requirement.name)
        assert name not in pinned, f"{name} is pinned twice"
        pinned[name] = Version(spec.version)
    return pinned


def lock_problems(wanted: list[Requirement], pinned: dict[str, Version]) -> list[str]:
    """What the lock misses: a direct dependency it does not pin, or pins outside its range."""
    problems = []
    for requirement in wanted:
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in the lock (run `make lock`)")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    return problems


def read_lock() -> dict[str, Version]:
    return pins((ROOT / makefile_variable("LOCK")).read_text())


def test_the_lock_pins_every_direct_dependency_within_its_specifier() -> None:
    assert lock_problems(declared(lock_extras()), read_lock()) == []


def test_the_check_reports_a_missing_pin_and_one_out_of_range() -> None:
    pinned = read_lock()
    del pinned["aiokafka"]
    pinned["fastapi"] = Version("0.1")
    missing, outside = lock_problems(declared([]), pinned)
    assert missing == "aiokafka is not in the lock (run `make lock`)"
    assert outside.startswith("fastapi==0.1 is outside >=")


def test_the_lock_covers_what_make_and_ci_install() -> None:
    assert set(makefile_variable("EXTRAS").split(",")) <= set(lock_extras())
    assert "s3" in lock_extras()  # the image's S3 file store


def test_the_torch_that_make_and_ci_install_is_the_locked_one() -> None:
    """The torch step runs under the lock too; PyTorch's CPU build (`+cpu`) of the locked
    version passes it, as PEP 440 ignores a local label against `==X` without one."""
    locked = read_lock()["torch"]
    ci = re.search(r'^export TORCH="(.*)"$', (ROOT / ".ci/run").read_text(), re.MULTILINE)
    assert ci, ".ci/run names its torch"
    for torch in (makefile_variable("TORCH"), ci[1]):
        assert Requirement(torch).specifier.contains(locked), torch
    assert Requirement(f"torch=={locked}").specifier.contains(Version(f"{locked}+cpu"))


def test_every_install_goes_through_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    stamp = makefile.split("\n$(STAMP):")[1].split("\n\n")[0]
    assert stamp.split("\n")[0].split() == ["pyproject.toml", "$(LOCK)"]  # reinstalls on change
    pip = [line for line in stamp.splitlines() if "pip install" in line]
    installs = [line for line in pip if "--upgrade pip" not in line]  # pip itself: unlocked
    assert len(installs) == 2
    assert all("$(CONSTRAINTS)" in line for line in installs)
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    image = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert image
    assert all(
        line.count("pip install") == line.count("${CONSTRAINTS:+-c $CONSTRAINTS}") for line in image
    )
    assert "COPY requirements.lock" in dockerfile
