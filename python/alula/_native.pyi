"""Type stub of the native module built from rust/py (checked by mypy.stubtest)."""

__all__ = [
    "__version__",
    "descriptor_set",
    "message_names",
    "normalize_message",
    "message_to_json",
    "message_from_json",
    "CompileError",
    "compile_workflow",
    "compile_task",
    "LocalRunFailure",
    "run_local",
    "encode_values",
    "decode_values",
    "RpcError",
    "grpc_unary",
    "serve",
    "auth_command",
    "storage_get",
    "storage_put",
    "storage_read_range",
    "storage_size",
    "storage_exists",
    "storage_list",
    "storage_download",
    "storage_upload",
    "storage_download_dir",
    "storage_upload_dir",
]

import os
from collections.abc import Callable
from typing import Any, final

from alula._bridge.local import LocalRunRequest
from alula.errors import CompileError as CompileError
from alula.errors import RpcError as RpcError

__version__: str

def descriptor_set() -> bytes:
    """The encoded FileDescriptorSet of Alula's flyteidl-compatible protocol."""

def message_names() -> list[str]:
    """Full names of every protobuf message the native core knows."""

def normalize_message(full_name: str, data: bytes) -> bytes:
    """Decode data as the named message and re-encode it in canonical field order."""

def message_to_json(full_name: str, data: bytes) -> str:
    """Render the named message as proto3 JSON (the REST gateway's mapping)."""

def message_from_json(full_name: str, json: str) -> bytes:
    """Parse proto3 JSON as the named message and return its binary encoding."""

def compile_workflow(
    primary: bytes, subworkflows: list[bytes], tasks: list[bytes], launch_plans: list[bytes]
) -> bytes:
    """Compile an encoded core.WorkflowTemplate with its subworkflows (core.WorkflowTemplate),
    tasks (core.TaskTemplate) and called launch plans (admin.LaunchPlan, with closure) into an
    encoded core.CompiledWorkflowClosure. Raises CompileError listing every problem found."""

def compile_task(template: bytes) -> bytes:
    """Validate an encoded core.TaskTemplate and return the encoded core.CompiledTask."""

@final
class LocalRunFailure:
    """Why a local run failed: the node whose failure ended it and its last attempt."""

    @property
    def node_id(self) -> str: ...
    @property
    def attempt(self) -> int:
        """The retry attempt that failed last (0 for the first)."""
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def exception(self) -> BaseException | None:
        """The Python exception of that attempt; None when it was not one (e.g. a timeout)."""

def run_local(request: LocalRunRequest) -> dict[str, Any] | LocalRunFailure:
    """Run `request.closure` (an encoded core.CompiledWorkflowClosure) with `request.inputs`,
    converted by its input and output kinds (as encode_values takes them).

    `request.resolve_task(name)` returns a ResolvedTask (alula._bridge.local). Returns the
    outputs by name, or a LocalRunFailure. Cacheable tasks read and write their outputs under
    `request.cache_dir` unless `request.overwrite_cache`.
    """

def encode_values(values: dict[str, Any], kinds: list[tuple[str, Any]]) -> bytes:
    """Encode `values[name]` for every `(name, kind)` as a core.LiteralMap (see run_local)."""

def decode_values(data: bytes, kinds: list[tuple[str, Any]]) -> dict[str, Any]:
    """Decode a core.LiteralMap into `{name: value}` for every `(name, kind)` present."""

def grpc_unary(
    endpoint: str,
    method: str,
    request: bytes,
    timeout_s: float = 30.0,
    *,
    tls: bool | None = None,
    ca_cert: str | os.PathLike[str] | None = None,
    metadata: list[tuple[str, str]] | None = None,
) -> bytes:
    """Send one unary gRPC request of encoded protobuf to `method` ("/package.Service/Method")
    at `endpoint` ("host:port", "dns:///host:port", "http://host:port" or "https://host:port")
    and return the encoded response. Raises RpcError when the call fails or gets no answer in
    `timeout_s`. `tls` chooses TLS for endpoints without a scheme; `ca_cert` is a PEM file of
    the CA(s) to trust instead of the system's roots; `metadata` are (key, value) pairs sent
    with the call, e.g. ("authorization", "Bearer ..."). Raises ValueError for a bad endpoint,
    metadata key or CA file."""

# --- alula start (rust/py/src/server.rs) ---

def serve(args: list[str], ready: Callable[[dict[str, str]], None] | None = None) -> None:
    """Run admin + propeller until Ctrl-C; `ready` gets the bound endpoints."""

def auth_command(args: list[str]) -> str:
    """`alula auth ARGS...` on the server's database; returns its output (RuntimeError on error)."""

# --- objects by URI (rust/py/src/storage.rs) ---
# URIs: s3://, gs://, az:// or abfs://, memory://, file:// or a plain path. Settings come from
# the environment (AWS_*, FLYTE_AWS_ENDPOINT / _ACCESS_KEY_ID / _SECRET_ACCESS_KEY, GOOGLE_*,
# AZURE_*). A missing object raises FileNotFoundError, a malformed URI ValueError, other
# failures OSError.

def storage_get(uri: str) -> bytes:
    """The whole object."""

def storage_put(uri: str, data: bytes) -> None:
    """Write `data` as the object."""

def storage_read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes `start` to `end` (exclusive) of the object."""

def storage_size(uri: str) -> int | None:
    """The object's size in bytes, None when there is none."""

def storage_exists(uri: str) -> bool:
    """Whether the object exists."""

def storage_list(prefix: str) -> list[tuple[str, str, int]]:
    """(uri, path below the prefix, size) of every object under the folder `prefix`."""

def storage_download(uri: str, local_path: str | os.PathLike[str]) -> int:
    """Stream the object into a local file; returns the bytes written."""

def storage_upload(local_path: str | os.PathLike[str], uri: str) -> int:
    """Stream a local file into the object (multipart when large); returns the bytes sent."""

def storage_download_dir(prefix: str, local_dir: str | os.PathLike[str]) -> int:
    """Copy every object under the folder `prefix` into `local_dir`; returns the file count."""

def storage_upload_dir(local_dir: str | os.PathLike[str], prefix: str) -> int:
    """Copy every file under `local_dir` below the folder `prefix`; returns the file count."""
