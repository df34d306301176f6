"""`alula.current_context().secrets.get` finds secrets where flytekit does."""

import os
from pathlib import Path

import pytest
from flytekit.configuration import SecretsConfig
from flytekit.core.context_manager import SecretsManager as FlytekitSecrets

import alula
from alula.core.secrets import SecretsManager


def test_reads_the_prefixed_variable_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_FSEC_MY-GROUP_API_KEY", " s3cret\n")
    monkeypatch.setenv("FLYTE_INTERNAL_EXECUTION_ID", "e1")
    assert alula.current_context().secrets.get("my-group", "api_key") == "s3cret"


def test_reads_files_lower_case_with_version(tmp_path: Path) -> None:
    (tmp_path / "grp" / "v1").mkdir(parents=True)
    (tmp_path / "grp" / "v1" / "pre-token").write_text("from-file\n")
    env = {
        "FLYTE_SECRETS_DEFAULT_DIR": str(tmp_path),
        "FLYTE_SECRETS_FILE_PREFIX": "pre-",
        "FLYTE_INTERNAL_EXECUTION_ID": "e1",
    }
    secrets = SecretsManager(env)
    assert secrets.get("GRP", "Token", group_version="v1") == "from-file"
    assert secrets.file("GRP", "Token", "v1") == str(tmp_path / "grp" / "v1" / "pre-token")
    assert secrets.env_var("grp", "token", "v1") == "_FSEC_GRP_V1_TOKEN"


def test_unprefixed_names_only_in_local_runs() -> None:
    assert SecretsManager({"G_K": "local"}).get("g", "k") == "local"
    with pytest.raises(ValueError, match="secret group 'g' key 'k' not found"):
        SecretsManager({"G_K": "local", "FLYTE_INTERNAL_EXECUTION_ID": "e"}).get("g", "k")


def test_names_match_flytekit(tmp_path: Path) -> None:
    cfg = SecretsConfig(env_prefix="_FSEC_", default_dir=str(tmp_path), file_prefix="")
    theirs = FlytekitSecrets(cfg)
    ours = SecretsManager({"FLYTE_SECRETS_DEFAULT_DIR": str(tmp_path)})
    for args in [("Group", "Key", None), ("g", "k", "v2"), ("a-b", "c_d", None)]:
        assert ours.env_var(*args) == theirs.get_secrets_env_var(*args)
        assert ours.file(*args) == theirs.get_secrets_file(*args)


def test_a_missing_secret_names_where_it_looked(tmp_path: Path) -> None:
    env = {"FLYTE_SECRETS_DEFAULT_DIR": str(tmp_path), "FLYTE_INTERNAL_EXECUTION_ID": "e"}
    with pytest.raises(ValueError) as e:
        SecretsManager(env).get("db", "password")
    assert "_FSEC_DB_PASSWORD" in str(e.value)
    assert os.path.join(str(tmp_path), "db", "password") in str(e.value)
