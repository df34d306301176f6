//! Warm-worker tests: a stand-in `python` speaking the worker protocol (a JSON request per
//! line in, `{"code": N}` out), an Alula task attempt, and running one to its end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::core::{
    task_template, Container, LiteralMap, TaskTemplate, WorkflowExecutionIdentifier,
};
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, Waker};
use alula_propeller::warm::WarmPlugin;
use tokio::sync::mpsc;

/// Writes `bin/python`: a shell script that runs `before` once, then for every request runs
/// `each` and answers success. Returns `bin`'s path for the plugin's `path_prefix`.
pub fn fake_python(bin: &Path, before: &str, each: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin)?;
    let script = bin.join("python");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{before}\nwhile read -r line; do\n  {each}\n  echo '{{\"code\": 0}}'\ndone\n"),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(bin.to_path_buf())
}

/// An attempt of an Alula task (`alula-execute`, which warm workers run) named `name`, with
/// its output folder `root/out/<name>`.
pub fn alula_attempt(root: &Path, name: &str) -> Attempt {
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
pub async fn run_to_end(plugin: &WarmPlugin, attempt: &Attempt) -> anyhow::Result<AttemptStatus> {
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

/// Whether `status` is a successful exit.
pub fn succeeded(status: &AttemptStatus) -> bool {
    matches!(
        status,
        AttemptStatus::Exited {
            exit_code: Some(0),
            ..
        }
    )
}
