"""The run command's rough edges and the client config: `alula --version`, `alula run --help`,
`alula run FILE --help`, a bad input value, Ctrl-C while `--remote` waits, a connection error
naming ALULA_ENDPOINT/--endpoint, `alula config init` read back by `alula` itself."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import ALULA, FLOWS, Cli

import alula


def _alula(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ALULA), *args], capture_output=True, text=True, timeout=60, env=env)


def test_version() -> None:
    done = _alula("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"alula {alula.__version__}"


def test_run_help_documents_every_option() -> None:
    done = _alula("run", "--help")
    assert done.returncode == 0, done.stderr
    for option in (
        "--remote",
        "--endpoint",
        "--image",
        "--project",
        "--domain",
        "--wait",
        "--parallelism",
        "--signal",
        "--processes",
        "--overwrite-cache",
        "--config",
    ):
        assert option in done.stdout, option


def test_run_file_help_lists_workflows_and_tasks() -> None:
    done = _alula("run", str(FLOWS), "--help")
    assert done.returncode == 0, done.stderr
    assert "workflows:" in done.stdout and "tasks:" in done.stdout
    assert "adder  --a int  --b int (default: 2)" in done.stdout
    assert "tick  --seconds int" in done.stdout
    entity = _alula("run", str(FLOWS), "adder", "--help")
    assert entity.returncode == 0 and "--a A" in entity.stdout


def test_a_bad_input_value_is_one_line() -> None:
    done = _alula("run", str(FLOWS), "adder", "--a", "many")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"alula run {FLOWS} adder: error: --a: invalid literal for int() with base 10: 'many' "
        f"(see alula run {FLOWS} adder --help)"
    ]
    missing = _alula("run", str(FLOWS), "nope")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_a_connection_error_names_the_endpoint_setting(tmp_path: Path) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "ALULA_ENDPOINT": "127.0.0.1:9",
    }
    done = _alula("get", "executions", env=env)
    assert done.returncode == 1
    assert "ALULA_ENDPOINT" in done.stderr and "--endpoint" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    remote = _alula("run", str(FLOWS), "adder", "--a", "1", "--remote", env=env)
    assert remote.returncode == 1
    assert "ALULA_ENDPOINT" in remote.stderr and "Traceback" not in remote.stderr


def test_ctrl_c_while_waiting_says_the_execution_goes_on(cli: Cli) -> None:
    proc = subprocess.Popen(
        [str(ALULA), "run", str(FLOWS), "ticker", "--seconds", "30", "--remote"],
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    name = ""
    for line in proc.stdout:
        if line.startswith("execution "):
            name = line.split()[1].rsplit(":", 1)[-1]
        if "RUNNING" in line:  # the progress line: waiting has begun
            break
    assert name
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"execution {name} goes on on the server" in err
    assert f"alula logs {name}" in err and "Traceback" not in err
    assert cli.json("get", "execution", name)["closure"]["phase"] == "RUNNING"
    cli.ok("terminate", name)


def test_remote_progress_and_the_failed_tasks_logs(cli: Cli) -> None:
    done = cli.run("run", str(FLOWS), "failing", "--x", "8", "--remote")
    assert done.returncode == 1
    assert "FAILED: " in done.stdout  # nodes counted by phase while waiting
    assert "--- last lines of node n1's stderr ---" in done.stderr
    assert "ValueError: ctl explode 9" in done.stderr


def test_config_init_is_read_back(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    out = cli.ok("config", "init", "--endpoint", cli.endpoint, "--insecure", "--file", str(config))
    assert str(config) in out
    assert config.read_text() == f"admin:\n  endpoint: dns:///{cli.endpoint}\n  insecure: true\n"
    env = {**cli.env()}
    env.pop("ALULA_ENDPOINT")
    env["FLYTECTL_CONFIG"] = str(config)
    done = subprocess.run(
        [str(ALULA), "get", "projects", "-o", "json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    again = cli.run("config", "init", "--file", str(config))
    assert again.returncode == 1 and "--force" in again.stderr
    assert "contradicts" in cli.fails(
        "config", "init", "--insecure", "--ca-cert", "ca.pem", "--file", str(tmp_path / "x")
    )
    default = cli.ok("config", "init", "--endpoint", cli.endpoint)
    assert str(cli.home / ".flyte" / "config.yaml") in default
