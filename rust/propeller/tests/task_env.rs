//! Local tasks run whatever their registration says, so they must not see the server's own
//! secrets: a task run end to end through propeller and the process plugin, and a warm worker,
//! print their environment, which has the variables tasks need (`LANG`, `FLYTE_*`, `AWS_*`,
//! what the `task_env` setting names) and none of the server's (`ALULA_DATABASE_URL` with its
//! password, `ALULA_SIGNING_KEY`, anything else).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::core::workflow_execution;
use alula_propeller::process::{ProcessConfig, ProcessPlugin};
use anyhow::Context;
use support::{only_file, Harness};

/// The server's environment in this test: its secrets, and what tasks should get.
const SERVER_ENV: [(&str, &str); 6] = [
    (
        "ALULA_DATABASE_URL",
        "postgres://alula:db-password-1@db/alula",
    ),
    ("ALULA_SIGNING_KEY", "signing-key-2"),
    ("SOME_OTHER_SECRET", "other-secret-3"),
    ("FLYTE_TEST_SETTING", "flyte-4"),
    ("AWS_REGION", "region-5"),
    ("OPERATOR_NAMED", "named-6"),
];

/// `NAME=value` lines, as `env` prints them, into a map (values with newlines are cut, which
/// none of the checked ones have).
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(env: &BTreeMap<String, String>, what: &str) {
    for (name, value) in SERVER_ENV {
        let passes = !name.starts_with("ALULA_") && name != "SOME_OTHER_SECRET";
        assert_eq!(
            env.get(name).map(String::as_str),
            passes.then_some(value),
            "{what}: {name}"
        );
    }
    let leaked: Vec<&String> = env.keys().filter(|k| k.starts_with("ALULA_")).collect();
    assert!(leaked.is_empty(), "{what} sees {leaked:?}");
    let all: String = env.values().cloned().collect();
    for secret in ["db-password-1", "signing-key-2", "other-secret-3"] {
        assert!(!all.contains(secret), "{what} sees {secret}");
    }
    assert!(env.contains_key("PATH"), "{what} has a PATH");
}

fn set_server_env() {
    for (name, value) in SERVER_ENV {
        std::env::set_var(name, value);
    }
}

#[tokio::test]
async fn process_tasks_get_only_what_tasks_need() -> anyhow::Result<()> {
    set_server_env();
    let h = Harness::new().await?;
    let task = h.task("printenv", &["sh", "-c", "env"]).await?;
    let lp = h.fan_out("printenv_wf", &task, 1).await?;
    let plugin = ProcessPlugin::new(ProcessConfig {
        work_root: h.dir.path().join("work"),
        inherit_env: vec!["OPERATOR_NAMED".into()],
        ..Default::default()
    });
    let running = h.propeller(vec![Arc::new(plugin)], h.config());
    h.launch("env1", &lp, 0).await?;
    let phase = h.wait_terminal("env1", Duration::from_secs(30)).await?;
    running.stop().await?;
    let stdout = std::fs::read_to_string(only_file(h.dir.path(), "stdout.txt")?)?;
    let stderr = std::fs::read_to_string(only_file(h.dir.path(), "stderr.txt")?)?;
    assert_eq!(
        phase,
        workflow_execution::Phase::Succeeded,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    check(&parse_env(&stdout), "a process task");
    Ok(())
}

/// Warm workers are long-lived Python processes running Alula tasks' code: the same rule. The
/// worker is a stand-in `python` speaking the worker protocol that writes its environment.
#[tokio::test]
async fn warm_workers_get_only_what_tasks_need() -> anyhow::Result<()> {
    use alula_propeller::warm::{WarmConfig, WarmPlugin};
    use support::warm::{alula_attempt, fake_python, run_to_end, succeeded};

    set_server_env();
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let attempt = alula_attempt(root, "warm-env");
    let out = attempt.output_prefix.clone();
    std::fs::create_dir_all(&out)?;
    let bin = fake_python(
        &root.join("bin"),
        "",
        &format!("env > '{}/env.txt'", out.display()),
    )?;
    let plugin = WarmPlugin::new(WarmConfig {
        work_root: root.join("work"),
        path_prefix: vec![bin],
        workers: 1,
        inherit_env: vec!["OPERATOR_NAMED".into()],
        ..Default::default()
    });
    let status = run_to_end(&plugin, &attempt).await?;
    assert!(succeeded(&status), "{status:?}");
    let env = std::fs::read_to_string(out.join("env.txt")).context("the worker's env")?;
    check(&parse_env(&env), "a warm worker");
    drop(plugin);
    Ok(())
}
