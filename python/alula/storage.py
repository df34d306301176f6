"""Objects by URI for tasks and types: local paths stay plain file operations, anything else
(`s3://`, `gs://`, `az://`/`abfs://`, `memory://`) goes through the native storage layer
(`rust/storage`, object_store), so a task image needs neither fsspec nor boto.

Transfers stream: `download`/`upload` move a file a part at a time with the GIL released, so
a file of any size costs a bounded amount of memory. S3 settings are the standard `AWS_*`
variables or flytekit's `FLYTE_AWS_ENDPOINT`, `FLYTE_AWS_ACCESS_KEY_ID` and
`FLYTE_AWS_SECRET_ACCESS_KEY`.
"""

from __future__ import annotations

import os

from alula import _bridge


def is_remote(uri: str) -> bool:
    """Whether `uri` names an object store rather than a local file (a path or file://)."""
    return "://" in uri and not uri.startswith("file://")


def local_path(uri: str) -> str:
    """The local path of a path or file:// URI."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def join(prefix: str, *names: str) -> str:
    """`prefix/name/...`: a URI below a folder URI, or a path below a local folder."""
    if is_remote(prefix):
        return "/".join([prefix.rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(local_path(prefix), *names)


def read(uri: str) -> bytes:
    """The whole object or file (for small ones: literal maps, documents)."""
    if is_remote(uri):
        return _bridge.storage_get(uri)
    with open(local_path(uri), "rb") as f:
        return f.read()


def write(uri: str, data: bytes) -> None:
    """Write `data` as the object or file."""
    if is_remote(uri):
        _bridge.storage_put(uri, data)
        return
    with open(local_path(uri), "wb") as f:
        f.write(data)


def exists(uri: str) -> bool:
    if is_remote(uri):
        return _bridge.storage_exists(uri)
    return os.path.exists(local_path(uri))


def read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes `start` to `end` (exclusive)."""
    if is_remote(uri):
        return _bridge.storage_read_range(uri, start, end)
    with open(local_path(uri), "rb") as f:
        f.seek(start)
        return f.read(max(0, end - start))


def download(uri: str, local: str) -> str:
    """Stream the object into the local file `local` (folders made as needed); returns it."""
    _bridge.storage_download(uri, local)
    return local


def upload(local: str, uri: str) -> str:
    """Stream the local file into the object `uri`; returns `uri`."""
    _bridge.storage_upload(local, uri)
    return uri


def download_dir(prefix: str, local: str) -> str:
    """Copy every object under the folder `prefix` into the local folder `local`."""
    _bridge.storage_download_dir(prefix, local)
    return local


def upload_dir(local: str, prefix: str) -> str:
    """Copy every file under the local folder below the folder `prefix`; returns `prefix`."""
    _bridge.storage_upload_dir(local, prefix)
    return prefix


def fetch(uri: str, local: str) -> str:
    """Download what `uri` names, an object or a folder of objects, to `local`; returns the
    local path. A data set may be either (flytekit writes a folder, others a single file)."""
    if _bridge.storage_exists(uri):
        return download(uri, local)
    return download_dir(uri, local)
