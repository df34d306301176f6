//! A server running as root runs local tasks as the configured `task_user`: a task run end to
//! end through propeller and the process plugin sees the user's uid and gid (and none of
//! root's groups), works in a folder it may write, reads its inputs and writes its outputs and
//! raw data, while the attempt's markers stay the server's. The test machine runs as root;
//! anywhere else this test fails (it cannot show a switch of users without root).

mod support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alula_idl::flyteidl::core::workflow_execution;
use alula_propeller::process::{ProcessConfig, ProcessPlugin, TaskUser};
use anyhow::Context;
use support::{only_file as only, Harness};

/// What the task reports about itself, one fact a line, in the order the test reads them.
const SCRIPT: &str = r#"id -u; id -g; id -G; echo "$HOME"; pwd
touch written-in-cwd && echo cwd-writable
cat '{{.input}}' > /dev/null && echo inputs-readable
echo data > '{{.outputPrefix}}/by-task' && echo outputs-writable
mkdir -p '{{.rawOutputDataPrefix}}/sub' && echo raw-writable
"#;

#[tokio::test]
async fn local_tasks_run_as_the_task_user() -> anyhow::Result<()> {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root: it shows tasks switching from root to the task user"
    );
    let nobody = TaskUser::from_setting(Some("nobody"))?
        .context("a server running as root switches to the task user")?;
    let h = Harness::new().await?;
    // The storage root must be reachable by the task user (the harness's temporary folder is
    // private, as a real deployment's parent folders may be): see `run_as`'s documentation.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let task = h.task("who", &["sh", "-c", SCRIPT]).await?;
    let lp = h.fan_out("who_wf", &task, 1).await?;
    let work_root = h.dir.path().join("work");
    let plugin = ProcessPlugin::new(ProcessConfig {
        work_root: work_root.clone(),
        ..Default::default()
    })
    .with_task_user(Some(nobody.clone()));
    let running = h.propeller(vec![Arc::new(plugin)], h.config());
    h.launch("who1", &lp, 0).await?;
    let phase = h.wait_terminal("who1", Duration::from_secs(30)).await?;
    running.stop().await?;

    let stdout = std::fs::read_to_string(only(h.dir.path(), "stdout.txt")?)?;
    let stderr = std::fs::read_to_string(only(h.dir.path(), "stderr.txt")?)?;
    assert_eq!(
        phase,
        workflow_execution::Phase::Succeeded,
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
    assert_eq!(lines.len(), 9, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(lines[0], uid, "the effective uid of the task");
    assert_eq!(lines[1], gid, "its gid");
    assert_eq!(lines[2], gid, "its groups: none of the server's");
    assert_eq!(lines[3], lines[4], "HOME is the working folder");
    assert!(
        lines[4].starts_with(&work_root.display().to_string()) && lines[4].ends_with("/home"),
        "the working folder {} is the attempt's home",
        lines[4]
    );
    assert_eq!(
        &lines[5..],
        [
            "cwd-writable",
            "inputs-readable",
            "outputs-writable",
            "raw-writable"
        ]
    );

    // What the task wrote is the task user's; the attempt's markers are the server's.
    let written = std::fs::metadata(only(h.dir.path(), "by-task")?)?;
    assert_eq!((written.uid(), written.gid()), (nobody.uid, nobody.gid));
    let in_cwd = std::fs::metadata(Path::new(lines[4]).join("written-in-cwd"))?;
    assert_eq!(in_cwd.uid(), nobody.uid);
    let attempt_dir = Path::new(lines[4])
        .parent()
        .context("the home is inside the attempt's folder")?;
    for marker in ["started", "pid", "exit"] {
        let meta = std::fs::metadata(attempt_dir.join(marker))?;
        assert_eq!(meta.uid(), 0, "{marker} belongs to the server");
    }
    assert_eq!(std::fs::metadata(attempt_dir)?.uid(), 0);
    Ok(())
}

/// Warm workers (Alula's own tasks) run as the task user too, and write into the attempt's
/// output folder. The worker is a stand-in `python` speaking the worker protocol (a JSON
/// request per line in, `{"code": N}` out) that records who it is in the output folder.
#[tokio::test]
async fn warm_workers_run_as_the_task_user() -> anyhow::Result<()> {
    use alula_propeller::warm::{WarmConfig, WarmPlugin};
    use support::warm::{alula_attempt, fake_python, run_to_end, succeeded};

    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root: it shows workers switching from root to the task user"
    );
    let nobody = TaskUser::from_setting(Some("nobody"))?
        .context("a server running as root switches to the task user")?;
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let attempt = alula_attempt(root, "warm1");
    let out = attempt.output_prefix.clone();
    let bin = fake_python(
        &root.join("bin"),
        "",
        &format!(
            "{{ id -u; id -G; echo \"$HOME\"; }} > '{}/who.txt'",
            out.display()
        ),
    )?;
    let plugin = WarmPlugin::new(WarmConfig {
        work_root: root.join("work"),
        path_prefix: vec![bin],
        workers: 1,
        ..Default::default()
    })
    .with_task_user(Some(nobody.clone()));
    let status = run_to_end(&plugin, &attempt).await?;
    assert!(succeeded(&status), "{status:?}");
    let who = std::fs::read_to_string(out.join("who.txt"))?;
    let lines: Vec<&str> = who.lines().collect();
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
    assert_eq!(lines.len(), 3, "{who}");
    assert_eq!((lines[0], lines[1]), (uid.as_str(), gid.as_str()), "{who}");
    assert!(lines[2].ends_with("/.alula-home"), "HOME {}", lines[2]);
    assert_eq!(std::fs::metadata(lines[2])?.uid(), nobody.uid);
    drop(plugin);
    Ok(())
}
