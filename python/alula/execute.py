"""`alula-execute` / `alula-map-execute`: run one task attempt the way a Flyte container does.

The command line has `pyflyte-execute`'s layout (what Alula's serialized TaskTemplates put in
the container args, with the template variables filled in by the executor):

    alula-execute --inputs <inputs.pb> --output-prefix <dir> --raw-output-data-prefix <dir>
        --checkpoint-path <dir> --prev-checkpoint <dir> --resolver <module.attr> -- <loader args>

It reads the inputs (a `flyteidl.core.LiteralMap`), runs the task's function and writes
`<output-prefix>/outputs.pb` — or `futures.pb` (a `DynamicJobSpec`) for a dynamic task, or
`error.pb` (an `ErrorDocument`) when the task raises. As with flytekit, a task's own failure is
reported through `error.pb` and the process still exits 0; bad arguments exit 2. Inputs and
outputs are local paths, `file://` URIs or object storage URIs (`s3://`, `gs://`, `abfs://`),
reached through Alula's native storage layer (no fsspec needed). With an object-store raw
output prefix, the files, folders, data sets and pickles a task returns are uploaded there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from datetime import datetime, timezone
from typing import Any

# flytekit's names for the array index of a map task element, set by the executor.
INDEX_VAR_NAME = "BATCH_JOB_ARRAY_INDEX_VAR_NAME"
INDEX_OFFSET = "BATCH_JOB_ARRAY_INDEX_OFFSET"


def _read(uri: str) -> bytes:
    from alula import storage

    return storage.read(uri)


def _write(prefix: str, name: str, payload: bytes) -> None:
    from alula import storage

    storage.write(storage.join(prefix, name), payload)


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, allow_abbrev=False)
    p.add_argument("--inputs", required=True)
    p.add_argument("--output-prefix", required=True)
    p.add_argument("--raw-output-data-prefix", default="")
    p.add_argument("--checkpoint-path", default="")
    p.add_argument("--prev-checkpoint", default="")
    p.add_argument("--resolver", required=True)
    p.add_argument("loader_args", nargs=argparse.REMAINDER)
    return p


def _resolver(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _error_document(error: BaseException) -> bytes:
    from alula import _bridge

    doc = {
        "error": {
            "code": f"USER:{type(error).__name__}",
            "message": "".join(traceback.format_exception(error)),
            # Alula retries a failed task within its `retries` whatever it raised, locally and
            # remotely alike (flytekit marks all but FlyteRecoverableException non-recoverable).
            "kind": "RECOVERABLE",
            "origin": "USER",
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        }
    }
    return _bridge.message_from_json("flyteidl.core.ErrorDocument", json.dumps(doc))


def _element(values: dict[str, Any], bound: list[str]) -> dict[str, Any]:
    """A map task element's inputs: element i of every mapped list, bound inputs as they are."""
    var = os.environ.get(INDEX_VAR_NAME)
    if not var:
        return values  # the executor wrote this element's own inputs
    index = int(os.environ[var]) + int(os.environ.get(INDEX_OFFSET, "0"))
    return {k: (v if k in bound else v[index]) for k, v in values.items()}


def run(argv: list[str], *, map_task: bool) -> int:
    from alula import _bridge, storage
    from alula.core.local import _kinds, dynamic_spec
    from alula.types.context import set_raw_output_prefix, set_uploader

    prog = "alula-map-execute" if map_task else "alula-execute"
    args = _parser(prog).parse_args(argv)
    loader = [a for a in args.loader_args if a != "--"]
    if not storage.is_remote(args.output_prefix):
        os.makedirs(storage.local_path(args.output_prefix), exist_ok=True)
    # Files, folders, data sets and pickles a task returns go under the raw-output prefix: a
    # local folder, or an object store they are uploaded to.
    if args.raw_output_data_prefix:
        set_raw_output_prefix(args.raw_output_data_prefix)
    else:  # the default folder; a warm worker's previous attempt may have set an uploader
        set_uploader(None)
    loaded = _resolver(args.resolver).load_task(loader)
    task, bound = loaded if map_task else (loaded, [])
    data = _read(args.inputs)
    if map_task and not os.environ.get(INDEX_VAR_NAME):
        # This element's own inputs (what Alula's warm workers are given).
        values = _bridge.decode_values(data, _kinds(task.interface.inputs))
    elif map_task:
        whole = {**task.interface.inputs}
        whole.update({k: list[t] for k, t in task.interface.inputs.items() if k not in bound})  # type: ignore[valid-type]
        values = _element(_bridge.decode_values(data, _kinds(whole)), bound)
    else:
        values = _bridge.decode_values(data, _kinds(task.interface.inputs))
    try:
        if task.dynamic:
            from alula.core.settings import SerializationSettings

            # The registration's settings travel in the container's environment.
            packed = os.environ.get(SerializationSettings.ENV_VAR)
            settings = SerializationSettings.from_compressed(packed) if packed else None
            spec = dynamic_spec(task, values, settings) if settings else dynamic_spec(task, values)
            name, payload = (
                "futures.pb",
                _bridge.message_from_json("flyteidl.core.DynamicJobSpec", json.dumps(spec.json)),
            )
        else:
            result = task.fn(**values)
            names = list(task.interface.outputs)
            outputs = (
                {names[0]: result} if len(names) == 1 else dict(zip(names, result, strict=True))
            )
            name, payload = (
                "outputs.pb",
                _bridge.encode_values(outputs, _kinds(task.interface.outputs)),
            )
    except Exception as error:  # the task's own failure: reported, not raised
        # Also in the attempt's stderr log, where a user reading the logs looks first.
        traceback.print_exception(error, file=sys.stderr)
        name, payload = "error.pb", _error_document(error)
    _write(args.output_prefix, name, payload)
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], map_task=False))


def map_main() -> None:
    sys.exit(run(sys.argv[1:], map_task=True))
