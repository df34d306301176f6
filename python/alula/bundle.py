"""The code bundle of a fast registration: the workflow folder's Python sources as a tar.gz.

What goes in follows pyflyte's fast registration: files matched by `.gitignore` (the folder's,
its subfolders' and, inside a git checkout, those above it up to the checkout's top, plus
`.git/info/exclude`) or by the folder's `.flyteignore` stay out, and so do caches, hidden
folders and virtualenvs. The storage folder of a server (`alula start` run from the same
folder) never goes in: it holds every project's bundles and unpacked copies of them, so a
bundle that took it in grew with each run and never kept its version.

The bundle is reproducible (sorted entries, fixed times, owners and modes, a gzip header with
no time), so an unchanged folder gives the same bytes, the same upload and the same version.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# alula-server writes this into its storage root. The name and signature are the Cache
# Directory Tagging convention (https://bford.info/cachedir/), so backup tools skip it too.
DATA_MARKER = "CACHEDIR.TAG"
MARKER_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
# Folders that are never a workflow's code, whatever the ignore files say.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class _Rule:
    base: str  # the folder of the file that declared the rule, relative to the top ("" or "a/")
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _glob_regex(glob: str) -> str:
    """A gitignore glob as a regular expression over `/`-separated relative paths."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif glob[i] == "\\" and i + 1 < len(glob):
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def parse_rules(text: str, base: str, anchored: bool = False) -> list[_Rule]:
    """The rules of one ignore file declared in folder `base` ("" or "sub/"). `anchored` reads
    every pattern relative to `base`, as `.flyteignore` (docker's syntax) does."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith("\\"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        # gitignore: a pattern with a `/` (other than a trailing one) is relative to its file's
        # folder; one without matches a name at any depth below it.
        if not anchored and "/" not in line:
            line = "**/" + line
        line = line.lstrip("/")
        if line:
            regex = re.compile(_glob_regex(line) + r"\Z", re.DOTALL)
            rules.append(_Rule(base, regex, negate, dir_only))
    return rules


def _ignored(rules: list[_Rule], rel: str, is_dir: bool) -> bool:
    """Whether the last rule matching `rel` (relative to the top) ignores it."""
    result = False
    for r in rules:
        if r.dir_only and not is_dir:
            continue
        if rel.startswith(r.base) and r.regex.match(rel[len(r.base) :]):
            result = not r.negate
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def is_server_data(folder: Path) -> bool:
    """Whether `folder` is a server's storage root: tagged by the server, or the one configured
    here, or (from a server older than the tag) the folder holding its SQLite database."""
    try:
        with open(folder / DATA_MARKER, "rb") as f:
            if f.read(len(MARKER_SIGNATURE)) == MARKER_SIGNATURE:
                return True
    except OSError:
        pass
    configured = os.environ.get("ALULA_STORAGE_ROOT")
    if configured and Path(configured).resolve() == folder.resolve():
        return True
    return (folder / "alula.db").is_file()


def _checkout_top(root: Path) -> Path:
    """The top of the git checkout holding `root`, or `root` itself outside one."""
    for folder in [root, *root.parents]:
        if (folder / ".git").exists():
            return folder
    return root


def sources(root: str | Path) -> Iterator[Path]:
    """The Python files of the bundle of `root`, in a fixed order."""
    root = Path(root).resolve()
    top = _checkout_top(root)
    prefix = "" if top == root else root.relative_to(top).as_posix() + "/"
    git_rules = parse_rules(_read(top / ".git" / "info" / "exclude"), "")
    # The .gitignore files above `root` inside the checkout, outermost first (`_walk` reads
    # those of `root` and below), as `git ls-files --exclude-standard` would.
    parts = root.relative_to(top).parts
    for depth in range(len(parts)):
        folder = "/".join(parts[:depth])
        git_rules += parse_rules(_read(top / folder / ".gitignore"), folder and folder + "/")
    flyte_rules = parse_rules(_read(root / ".flyteignore"), prefix, anchored=True)
    yield from _walk(root, prefix, git_rules, flyte_rules)


def _walk(
    folder: Path, rel: str, git_rules: list[_Rule], flyte_rules: list[_Rule]
) -> Iterator[Path]:
    git_rules = git_rules + parse_rules(_read(folder / ".gitignore"), rel)

    def ignored(name: str, is_dir: bool) -> bool:
        path = rel + name
        return _ignored(git_rules, path, is_dir) or _ignored(flyte_rules, path, is_dir)

    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    for e in entries:
        if e.is_file() and e.name.endswith(".py") and not ignored(e.name, False):
            yield Path(e.path)
    for e in entries:
        if not e.is_dir(follow_symlinks=False) or ignored(e.name, True):
            continue
        sub = Path(e.path)
        # Hidden folders (.git, .venv, caches), virtualenvs and servers' data are never code.
        if e.name.startswith(".") or e.name in _SKIP_DIRS or (sub / "pyvenv.cfg").exists():
            continue
        if is_server_data(sub):
            continue
        yield from _walk(sub, f"{rel}{e.name}/", git_rules, flyte_rules)


def bundle(root: str | Path) -> bytes:
    """The bundle of `root` as reproducible tar.gz bytes: equal sources, equal bytes."""
    root = Path(root).resolve()
    return archive((path.relative_to(root).as_posix(), path.read_bytes()) for path in sources(root))


def archive(members: Iterable[tuple[str, bytes]]) -> bytes:
    """Reproducible tar.gz bytes of `(name, data)` members, in the order given (the bundle of
    a folder, or of a notebook's pickled tasks and local modules: `alula.interactive`)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)
