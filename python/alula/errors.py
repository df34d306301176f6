"""The one root of every exception Alula defines: `except alula.AlulaError` catches them all.

Each class also keeps the builtin base it always had (ValueError, RuntimeError, ...), so code
that catches those still works. The native module raises CompileError and RpcError from here.
"""

from __future__ import annotations


class AlulaError(Exception):
    """Raised by Alula: the base of every error class the SDK and its native core define."""


class CompileError(AlulaError, ValueError):
    """A workflow or task failed to compile; args[0] is Flyte's collected-errors message."""

    errors: list[tuple[str, str, str]]
    """Every error found, as (code, node_id, description); set by the native compiler."""


class RpcError(AlulaError, RuntimeError):
    """A gRPC call failed; args[0] names the RPC, the code and the server's message."""

    code: str
    """The gRPC code name: "NOT_FOUND", "ALREADY_EXISTS", "UNAVAILABLE", ..."""
    message: str
    """The server's message (or the client's, for UNAVAILABLE and DEADLINE_EXCEEDED)."""
    method: str
    """The full method path, e.g. "/flyteidl.service.AdminService/CreateTask"."""


__all__ = ["AlulaError", "CompileError", "RpcError"]
