"""The code bundle of `alula run --remote` / `Remote.register`: what goes in (the folder's Python
sources minus what .gitignore and .flyteignore exclude, never a server's data folder) and that
an unchanged folder gives the same bytes, hence the same upload and version."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from alula.remote import auto_version, bundle

CACHEDIR_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# alula-server storage root\n"


def write(root: Path, rel: str, text: str = "X = 1\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workflow folder in which `alula start` ran, with ignore files and the usual junk."""
    monkeypatch.delenv("ALULA_STORAGE_ROOT", raising=False)
    root = tmp_path / "project"
    for rel in ["wf.py", "pkg/__init__.py", "pkg/tasks.py", "pkg/keep_tmp.py"]:
        write(root, rel)
    write(root, ".gitignore", "# generated\nsecret.py\n/build/\n*_tmp.py\n!keep_tmp.py\n")
    write(root, "secret.py")  # .gitignore'd by name
    write(root, "pkg/secret.py")  # ... at any depth
    write(root, "build/gen.py")  # an anchored, folder-only rule
    write(root, "pkg/build/kept.py")  # `/build/` is anchored: this one stays
    write(root, "pkg/scratch_tmp.py")  # a wildcard; keep_tmp.py is re-included by `!`
    write(root, "pkg/.gitignore", "local_*.py\n")
    write(root, "pkg/local_settings.py")  # a nested .gitignore
    write(root, ".flyteignore", "notebooks\nexperiments/*.py\n")
    write(root, "notebooks/explore.py")
    write(root, "experiments/try.py")
    write(root, "pkg/experiments/kept2.py")  # .flyteignore patterns are anchored (docker's)
    # The server's storage root, as `alula start` leaves it after running a bundle.
    write(root, "alula-data/CACHEDIR.TAG", CACHEDIR_TAG)
    write(root, "alula-data/work/warm/bundles/0123abcd/wf.py")
    write(root, "alula-data/uploads/flytesnacks/development/x/fast.py")
    # A storage root given another name (`alula start --data srv`), found by its tag too.
    write(root, "srv/CACHEDIR.TAG", CACHEDIR_TAG)
    write(root, "srv/work/process/old.py")
    # Junk: caches, virtualenvs, VCS metadata.
    write(root, "__pycache__/wf.cpython-311.pyc")
    write(root, "pkg/tasks.pyc")
    write(root, ".venv/lib/site.py")
    write(root, "env/pyvenv.cfg", "home = /usr\n")
    write(root, "env/lib/mod.py")
    write(root, ".git/hooks/hook.py")
    return root


EXPECTED = ["wf.py", "pkg/__init__.py", "pkg/keep_tmp.py", "pkg/tasks.py", "pkg/build/kept.py"]


def test_bundle_leaves_out_ignored_files_junk_and_the_server_data(project: Path) -> None:
    assert sorted(members(bundle(project))) == sorted(EXPECTED + ["pkg/experiments/kept2.py"])


def test_configured_storage_root_is_left_out_without_its_tag(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "untagged/alula.py")
    assert "untagged/alula.py" in members(bundle(project))
    monkeypatch.setenv("ALULA_STORAGE_ROOT", str(project / "untagged"))
    assert "untagged/alula.py" not in members(bundle(project))


def test_data_folder_of_an_older_server_is_recognised_by_its_database(project: Path) -> None:
    write(project, "old-data/alula.db", "")
    write(project, "old-data/work/warm/bundles/ff/wf.py")
    assert not [m for m in members(bundle(project)) if m.startswith("old-data/")]


def test_unchanged_folder_gives_identical_bytes_and_version(project: Path) -> None:
    first = bundle(project)
    # What a run changes without changing the code: the server unpacks the bundle into its
    # data folder, Python writes caches, files are touched.
    write(project, "alula-data/work/warm/bundles/4567cdef/wf.py")
    write(project, "pkg/__pycache__/tasks.cpython-311.pyc")
    for path in project.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    second = bundle(project)
    assert second == first
    assert auto_version(second, []) == auto_version(first, [])

    # The archive itself is reproducible: sorted names, no times, owners or modes of the host.
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        infos = tar.getmembers()
    assert [(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos] == [
        (0, 0, 0, "", "", 0o644)
    ] * len(infos)
    assert first[4:8] == bytes(4)  # the gzip header's MTIME

    write(project, "pkg/tasks.py", "X = 2\n")
    assert bundle(project) != first


def test_gitignore_above_the_folder_applies_inside_a_checkout(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, ".gitignore", "generated_*.py\nflows/local/\n")
    write(tmp_path, "flows/wf.py")
    write(tmp_path, "flows/generated_a.py")
    write(tmp_path, "flows/local/x.py")
    assert members(bundle(tmp_path / "flows")) == ["wf.py"]
