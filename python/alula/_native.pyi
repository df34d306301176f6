"""Type stub of the native module built from rust/py (checked by mypy.stubtest)."""

__all__ = [
    "__version__",
    "descriptor_set",
    "message_names",
    "normalize_message",
    "message_to_json",
    "message_from_json",
]

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
