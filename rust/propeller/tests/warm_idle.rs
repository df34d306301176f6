//! A warm pool with no work for its idle timeout stops its worker processes (each code bundle
//! used to keep two Python processes forever), and a later task for the same bundle starts a
//! pool again. The worker is a stand-in `python` (a shell script speaking the worker protocol:
//! a JSON request per line in, `{"code": N}` out) that records its process id.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::core::{
    task_template, Container, LiteralMap, TaskTemplate, WorkflowExecutionIdentifier,
};
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, Waker};
use alula_propeller::warm::{WarmConfig, WarmPlugin};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use tokio::sync::mpsc;

const IDLE: Duration = Duration::from_millis(300);

fn fake_python(bin: &Path, pids: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin)?;
    let script = bin.join("python");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> '{}'\nwhile read -r line; do echo '{{\"code\": 0}}'; done\n",
            pids.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn attempt(root: &Path, name: &str) -> Attempt {
    let task = TaskTemplate {
        r#type: "python-task".into(),
        target: Some(task_template::Target::Container(Container {
            image: "img".into(),
            command: vec!["alula-execute".into(), "--inputs".into(), "x".into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    let out = root.join("out").join(name);
    Attempt {
        execution: WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: name.into(),
            org: String::new(),
        },
        node_id: "n0".into(),
        retry_attempt: 0,
        array_index: None,
        task: Arc::new(task),
        overrides: None,
        inputs: Arc::new(LiteralMap::default()),
        inputs_path: root.join("inputs.pb"),
        output_prefix: out.clone(),
        raw_output_prefix: out.join("raw"),
        checkpoint_prefix: out.join("checkpoint"),
        prev_checkpoint_prefix: None,
        env: BTreeMap::new(),
        settings: Default::default(),
    }
}

/// Starts `attempt` and waits until the plugin reports it finished.
async fn run(plugin: &WarmPlugin, attempt: &Attempt) -> anyhow::Result<AttemptStatus> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    plugin.start(attempt, Waker::new(tx.clone(), 1)).await?;
    loop {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await?;
        let status = plugin.check(attempt, Waker::new(tx.clone(), 1)).await?;
        if status != AttemptStatus::Running {
            return Ok(status);
        }
    }
}

fn pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().expect("a pid"))
        .collect()
}

fn alive(pid: i32) -> bool {
    // A process that was killed but never waited for would still answer (a zombie): the
    // pool must reap what it stops.
    kill(Pid::from_raw(pid), None).is_ok()
}

#[tokio::test]
async fn idle_warm_pool_stops_its_workers_and_restarts_on_demand() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let pid_file = root.join("pids");
    fake_python(&root.join("bin"), &pid_file)?;
    let plugin = WarmPlugin::new(WarmConfig {
        work_root: root.join("work"),
        path_prefix: vec![root.join("bin")],
        workers: 2,
        idle_timeout: IDLE,
        ..Default::default()
    });
    let exited = AttemptStatus::Exited {
        exit_code: Some(0),
        message: String::new(),
    };

    assert_eq!(run(&plugin, &attempt(root, "first")).await?, exited);
    let first = pids(&pid_file);
    assert_eq!(first.len(), 1, "one worker ran the task: {first:?}");
    assert!(
        alive(first[0]),
        "the worker stays warm right after its task"
    );

    tokio::time::sleep(IDLE * 5).await;
    assert!(
        !alive(first[0]),
        "worker {} still runs after the pool was idle for {:?}",
        first[0],
        IDLE * 5
    );

    assert_eq!(run(&plugin, &attempt(root, "second")).await?, exited);
    let all = pids(&pid_file);
    assert_eq!(all.len(), 2, "a fresh worker ran the later task: {all:?}");
    assert!(alive(all[1]));
    drop(plugin);
    Ok(())
}
