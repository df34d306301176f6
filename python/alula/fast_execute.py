"""`alula-fast-execute`: unpack a registered code bundle, then run the task's command.

Fast registration uploads the workflow's source as a tar.gz instead of building an image; the
task's container args start with this command (`pyflyte-fast-execute`'s layout):

    alula-fast-execute --additional-distribution <bundle URI> --dest-dir <dir> -- <command...>

The bundle is unpacked into `<dir>`, which goes first on PYTHONPATH so the command imports the
registered code rather than whatever the image holds; then the command replaces this process.
Local paths and `file://` URIs are read directly; other URIs (`s3://...` when the server keeps
its storage in a bucket, `gs://`, `abfs://`) are streamed to a temporary file by Alula's native
storage layer, so the task image needs no fsspec.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
from typing import IO

PROG = "alula-fast-execute"


def _open_remote(uri: str) -> IO[bytes]:
    """The bundle at a remote `uri`, downloaded to an unnamed temporary file."""
    import tempfile

    from alula import storage

    with tempfile.TemporaryDirectory(prefix="alula-bundle-") as folder:
        local = os.path.join(folder, "bundle")
        try:
            storage.download(uri, local)
        except FileNotFoundError:
            raise SystemExit(f"{PROG}: {uri}: no such bundle") from None
        except ValueError as e:  # a URI no store answers to
            raise SystemExit(f"{PROG}: {uri}: cannot read this kind of URI: {e}") from None
        except OSError as e:
            raise SystemExit(f"{PROG}: {uri}: cannot download the bundle: {e}") from None
        # Open before the folder goes: the file lives on until it is closed.
        return open(local, "rb")


def _open(uri: str) -> IO[bytes]:
    if uri.startswith("file://") or "://" not in uri:
        path = uri.removeprefix("file://")
        if not os.path.isfile(path):
            raise SystemExit(f"{PROG}: {uri}: no such bundle")
        return open(path, "rb")
    return _open_remote(uri)


def unpack(uri: str, dest: str) -> str:
    """Extract the bundle at `uri` into `dest`; returns `dest` as an absolute path."""
    dest = os.path.abspath(dest)
    os.makedirs(dest, exist_ok=True)
    with _open(uri) as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
        # The "data" filter refuses absolute paths, links out of dest and device files.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python 3.10 before the filter backport: check the names ourselves
            for member in tar.getmembers():
                target = os.path.abspath(os.path.join(dest, member.name))
                if not (member.isfile() or member.isdir()) or not target.startswith(dest + os.sep):
                    raise SystemExit(f"{PROG}: {uri}: refusing bundle member {member.name!r}")
            tar.extractall(dest)
    return dest


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, allow_abbrev=False)
    p.add_argument("--additional-distribution", required=True, metavar="URI")
    p.add_argument("--dest-dir", default=".", metavar="DIR")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> None:
    p = _parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("a command to run is required after --")
    dest = unpack(args.additional_distribution, args.dest_dir)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = dest if not path else os.pathsep.join([dest, path])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
