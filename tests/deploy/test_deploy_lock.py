"""The hashed locks (requirements/*.hashes.txt, made by scripts/lock): current with the pins people edit, each pin at
the edited version with at least one sha256, and the only thing scripts/bootstrap and the images install from, with
--require-hashes. scripts/bootstrap refuses a stale one before installing anything (run here on a copy)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_deploy_dockerfile import norm, stages

from devtools.live_servers import REPO

REQUIREMENTS = REPO / "requirements"
HASHED = sorted(REQUIREMENTS.glob("*.hashes.txt"))
SOURCES = {"lock": "lock.txt", "no-deps": "no-deps.txt", "test-no-deps": "test-no-deps.txt",
           "gateway": "gateway.in", "client": "client.in"}


def requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a requirements file (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    found = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split(" --")
        name, _, version = spec.partition("==")
        hashes = [o.strip().removeprefix("hash=sha256:") for o in options if o.startswith("hash=")]
        found[norm(name)] = (version.strip(), hashes)
    return found


def test_every_source_has_its_hashed_lock() -> None:
    assert {p.name.removesuffix(".hashes.txt") for p in HASHED} == set(SOURCES)


@pytest.mark.parametrize("hashed", HASHED, ids=lambda p: p.name)
def test_each_hashed_lock_is_current_and_pins_with_hashes(hashed: Path) -> None:
    first = hashed.read_text(encoding="utf-8").splitlines()[0]
    inputs, digest = re.fullmatch(r"# from (.+) sha256:([0-9a-f]{64})", first).groups()  # type: ignore[union-attr]
    text = b"".join((REPO / name).read_bytes() for name in inputs.split())
    assert hashlib.sha256(text).hexdigest() == digest, f"{inputs} changed since: run scripts/lock"
    locked = requirements(hashed)
    assert locked and all(version and hashes for version, hashes in locked.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, hashes in locked.values() for h in hashes)
    source = requirements(REQUIREMENTS / SOURCES[hashed.name.removesuffix(".hashes.txt")])
    pinned = {name: version for name, (version, _) in source.items() if version}
    assert {name: locked[name][0] for name in pinned} == pinned  # every edited pin, at its version
    assert set(source) <= set(locked)


@pytest.mark.parametrize("image", ["gateway", "client"])
def test_images_get_the_versions_of_the_lock(image: str) -> None:
    lock = {name: version for name, (version, _) in requirements(REQUIREMENTS / "lock.txt").items()}
    locked = {name: version for name, (version, _) in requirements(REQUIREMENTS / f"{image}.hashes.txt").items()}
    assert {name: lock.get(name) for name in locked} == locked


def test_bootstrap_and_images_install_only_hash_checked_locks() -> None:
    bootstrap = (REPO / "scripts/bootstrap").read_text(encoding="utf-8")
    assert "--require-hashes" in bootstrap
    installs = re.findall(r"-r (requirements/\S+)", bootstrap)
    assert installs and all(path.endswith(".hashes.txt") for path in installs)
    runs = [args for steps in stages().values() for keyword, args in steps
            if keyword == "RUN" and "pip install" in args]
    commands = [c.strip() for run in runs for c in run.split("&&") if "pip install" in c]
    assert len(commands) == 3  # the gateway's lock and its no-deps packages, the client's lock
    assert all("--require-hashes" in c and re.search(r" -r requirements/[\w-]+\.hashes\.txt$", c) for c in commands)


def test_bootstrap_refuses_a_pin_edited_without_scripts_lock(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts/bootstrap", tmp_path / "scripts/bootstrap")
    shutil.copytree(REQUIREMENTS, tmp_path / "requirements")
    lock = tmp_path / "requirements/lock.txt"
    lock.write_text(lock.read_text(encoding="utf-8") + "six==1.16.0\n", encoding="utf-8")
    result = subprocess.run(["bash", str(tmp_path / "scripts/bootstrap")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    message = "requirements/lock.txt changed since requirements/lock.hashes.txt was made: run scripts/lock"
    assert message in result.stderr
    assert not (tmp_path / ".venv").exists()  # refused before installing anything
