//! A warm pool with no work for its idle timeout stops its worker processes (each code bundle
//! used to keep two Python processes forever), and a later task for the same bundle starts a
//! pool again. The worker is a stand-in `python` (a shell script speaking the worker protocol:
//! a JSON request per line in, `{"code": N}` out) that records its process id.

mod support;

use std::path::Path;
use std::time::Duration;

use alula_propeller::plugin::AttemptStatus;
use alula_propeller::warm::{WarmConfig, WarmPlugin};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use support::warm::{alula_attempt as attempt, fake_python, run_to_end as run};

const IDLE: Duration = Duration::from_millis(300);

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
    fake_python(
        &root.join("bin"),
        &format!("echo $$ >> '{}'", pid_file.display()),
        ":",
    )?;
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
