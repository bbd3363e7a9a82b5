"""caseclock as it is shipped: the lock files agree with pyproject.toml, and the wheel, installed
outside the checkout with nothing on PYTHONPATH, migrates a database and serves."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from scratch_database import empty_database
from test_cli import free_port

from service.store.db import make_engine
from service.store.migrations import current_revision, head_revision

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
# Building and installing caseclock alone: its dependencies are the lock's business.
OFFLINE = ("--no-deps", "--no-build-isolation", "--no-index", "--quiet")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    """Package name (normalised) to the version a lock file pins."""
    text = (ROOT / lock).read_text("utf-8")
    return {normalise(name): version for name, version in PIN.findall(text)}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unmet(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    """The requirements (for Python 3.11 on Linux) that the pinned versions do not satisfy."""
    found = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = pinned.get(normalise(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{line} (locked: {version or 'nothing'})")
    return found


def test_the_service_lock_satisfies_every_dependency_in_pyproject() -> None:
    assert unmet(PYPROJECT["project"]["dependencies"], pins("requirements.lock")) == []


def test_the_development_lock_satisfies_every_dependency_and_development_tool() -> None:
    wanted = (
        PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    )
    assert unmet(wanted, pins("requirements-dev.lock")) == []


def test_the_two_locks_pin_the_same_version_of_every_package_they_share() -> None:
    service, development = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: (version, development.get(name)) for name, version in service.items()} == {
        name: (version, version) for name, version in service.items()
    }


# The wheel


@dataclass
class Installed:
    """A virtualenv outside the checkout holding caseclock's wheel, and where it runs from."""

    bin: Path
    home: Path

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own command, with fixed arguments
            [str(self.bin / "caseclock"), *args],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def checked(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources (nothing is built inside the checkout), then
    install it alone into a new virtualenv that borrows this environment's dependencies
    through a .pth file: no index is reached, and the dependencies are the lock's."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = work / "dist"
    python = sys.executable
    checked([python, "-m", "pip", "wheel", *OFFLINE, "--wheel-dir", str(dist), str(source)])
    (wheel,) = dist.glob("caseclock-*.whl")

    venv = work / "venv"
    checked([python, "-m", "venv", "--without-pip", str(venv)])
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "borrowed-dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n", "utf-8")
    target = ["--python", str(venv / "bin" / "python")]
    checked([python, "-m", "pip", *target, "install", *OFFLINE, "--ignore-installed", str(wheel)])
    home = work / "home"
    home.mkdir()
    return Installed(bin=venv / "bin", home=home)


@dataclass
class Migrated:
    database: str
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def migrated(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    """An empty database, and what `caseclock migrate` from the wheel made of it."""
    with empty_database(tmp_path_factory.mktemp("database")) as url:
        yield Migrated(url, installed.run("migrate", env=environment(url)))


def environment(database_url: str) -> dict[str, str]:
    """The user's environment as a shell would have it, with nothing put on PYTHONPATH."""
    skip = ("CASECLOCK_", "PYTHONPATH", "VIRTUAL_ENV", "PYTEST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["CASECLOCK_DATABASE_URL"] = database_url
    env["CASECLOCK_LOG_FORMAT"] = "console"
    return env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter, with fixed arguments
        [str(installed.bin / "python"), "-c", "import service; print(service.__file__)"],
        env=environment("unused"),
        cwd=installed.home,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(result.stdout.strip()).is_relative_to(installed.bin.parent)


def test_the_installed_wheel_migrates_an_empty_database_to_head(migrated: Migrated) -> None:
    assert migrated.result.returncode == 0, migrated.result.stderr
    assert asyncio.run(revision_of(migrated.database)) == head_revision()


async def revision_of(database: str) -> str | None:
    engine = make_engine(database)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


def test_the_installed_wheel_serves_on_the_database_it_migrated(
    installed: Installed, migrated: Migrated
) -> None:
    assert migrated.result.returncode == 0, migrated.result.stderr
    env = environment(migrated.database)
    port = free_port()
    log = installed.home / f"serve-{port}.log"
    with log.open("w") as output:
        server = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
            [str(installed.bin / "caseclock"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=installed.home,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = wait_until_ready(f"http://127.0.0.1:{port}", server, log)
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert ready.json()["checks"]["schema"] == "ok"
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


def wait_until_ready(base_url: str, server: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, log.read_text()
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=1)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"serve did not become ready:\n{log.read_text()}"
        time.sleep(0.2)
