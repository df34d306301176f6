"""The one door to `alula._native`: no other module of the SDK imports the native module.

Everything the SDK calls in Rust is re-exported here, so the boundary is listed in one place
(and `_native.pyi` types it). Values that used to cross as tuples read by index cross as the
typed classes of `alula._bridge.local`.
"""

from __future__ import annotations

from alula import _native
from alula._bridge.local import LocalRunFailure, LocalRunRequest, ResolvedTask, run_local
from alula._native import (
    __version__,
    auth_command,
    compile_task,
    compile_workflow,
    decode_values,
    descriptor_set,
    encode_values,
    grpc_unary,
    message_from_json,
    message_names,
    message_to_json,
    normalize_message,
    serve,
    storage_download,
    storage_download_dir,
    storage_exists,
    storage_get,
    storage_list,
    storage_put,
    storage_read_range,
    storage_size,
    storage_upload,
    storage_upload_dir,
)


def native_file() -> str:
    """Where the native module was loaded from."""
    return str(_native.__file__)


__all__ = [
    "LocalRunFailure",
    "LocalRunRequest",
    "ResolvedTask",
    "__version__",
    "auth_command",
    "compile_task",
    "compile_workflow",
    "decode_values",
    "descriptor_set",
    "encode_values",
    "grpc_unary",
    "message_from_json",
    "message_names",
    "message_to_json",
    "native_file",
    "normalize_message",
    "run_local",
    "serve",
    "storage_download",
    "storage_download_dir",
    "storage_exists",
    "storage_get",
    "storage_list",
    "storage_put",
    "storage_read_range",
    "storage_size",
    "storage_upload",
    "storage_upload_dir",
]
