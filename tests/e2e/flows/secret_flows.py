"""Tasks that ask for secrets (test_secrets_local.py): run by propeller's local plugins, which
read them from the server's secrets folder or environment."""

from __future__ import annotations

import alula
from alula import Secret, task, workflow


@task(
    secret_requests=[
        Secret(group="files", key="token"),
        Secret(group="envs", key="password", mount_requirement=Secret.MountType.ENV_VAR),
    ]
)
def read_secrets() -> str:
    secrets = alula.current_context().secrets
    return f"{secrets.get('files', 'token')}+{secrets.get('envs', 'password')}"


@workflow
def with_secrets() -> str:
    return read_secrets()


@task(secret_requests=[Secret(group="absent", key="nothing")])
def needs_a_missing_secret() -> str:
    return "unreachable"


@workflow
def with_a_missing_secret() -> str:
    return needs_a_missing_secret()
