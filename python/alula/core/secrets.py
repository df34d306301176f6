"""Secrets at run time: ``alula.current_context().secrets.get(group, key)``.

The lookup rules are flytekit's ``SecretsManager``'s, so a task reads what Flyte's (and Alula's)
pod plugin mounts and what Alula's local plugins pass:

1. the environment variable ``<prefix><GROUP>[_<VERSION>]_<KEY>`` (upper case; the prefix is
   ``FLYTE_SECRETS_ENV_PREFIX``, by default ``_FSEC_``), and when not running as a task of an
   execution (a local run) also the name without the prefix;
2. the file ``<dir>/<group>[/<version>]/<file prefix><key>`` (lower case; ``dir`` is
   ``FLYTE_SECRETS_DEFAULT_DIR``, by default ``/etc/secrets``; the file prefix
   ``FLYTE_SECRETS_FILE_PREFIX``, by default empty).

Values are stripped of surrounding whitespace, as flytekit does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_PREFIX_VAR = "FLYTE_SECRETS_ENV_PREFIX"
DEFAULT_DIR_VAR = "FLYTE_SECRETS_DEFAULT_DIR"
FILE_PREFIX_VAR = "FLYTE_SECRETS_FILE_PREFIX"
DEFAULT_ENV_PREFIX = "_FSEC_"
DEFAULT_DIR = os.path.join(os.sep, "etc", "secrets")
# Set by propeller for every task attempt: its absence means a local run.
_EXECUTION_VAR = "FLYTE_INTERNAL_EXECUTION_ID"


def _parts(group: str, key: str | None, group_version: str | None) -> list[str]:
    return [p for p in (group, group_version, key) if p]


class SecretsManager:
    """Finds secrets by group and key (see the module's documentation)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def env_var(self, group: str, key: str | None = None, group_version: str | None = None) -> str:
        """The variable the secret is read from."""
        prefix = self._environ.get(ENV_PREFIX_VAR, DEFAULT_ENV_PREFIX).strip()
        return prefix + "_".join(p.upper() for p in _parts(group, key, group_version))

    def file(self, group: str, key: str | None = None, group_version: str | None = None) -> str:
        """The file the secret is read from when no variable holds it."""
        base = self._environ.get(DEFAULT_DIR_VAR, DEFAULT_DIR).strip()
        file_prefix = self._environ.get(FILE_PREFIX_VAR, "").strip()
        parts = [p.lower() for p in _parts(group, key, group_version)]
        parts[-1] = file_prefix + parts[-1]
        return os.path.join(base, *parts)

    def get(
        self,
        group: str,
        key: str | None = None,
        group_version: str | None = None,
        encode_mode: str = "r",
    ) -> str:
        """The secret's value; ``ValueError`` naming where it was looked for if it is nowhere."""
        if not group:
            raise ValueError("a secret needs a group")
        names = [self.env_var(group, key, group_version)]
        if _EXECUTION_VAR not in self._environ:
            names.append("_".join(p.upper() for p in _parts(group, key, group_version)))
        for name in names:
            value = self._environ.get(name)
            if value is not None:
                return value.strip()
        path = self.file(group, key, group_version)
        if os.path.exists(path):
            with open(path, encode_mode) as f:
                content = f.read()
            return (content.decode() if isinstance(content, bytes) else content).strip()
        raise ValueError(
            f"secret group {group!r} key {key!r} not found: no environment variable "
            f"{' or '.join(names)} and no file {path}; request it with "
            f"secret_requests=[alula.Secret(group={group!r}, key={key!r})] on the task"
        )


@dataclass(frozen=True)
class ExecutionContext:
    """What a running task can ask of its environment."""

    secrets: SecretsManager


def current_context() -> ExecutionContext:
    """The context of the running task (reads the environment at each call)."""
    return ExecutionContext(secrets=SecretsManager())
