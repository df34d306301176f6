//! The process plugin: runs a container task's command as a local process, the way a pod would
//! run it, with Flyte's template variables filled in and the task's environment. Tasks
//! registered by flytekit run through `pyflyte-fast-execute` / `pyflyte-execute` unchanged;
//! Alula's through `alula-fast-execute` / `alula-execute`. Pod tasks (`k8s_pod` targets) run
//! their primary container's command the same way; the rest of the pod is ignored
//! ([`pod_task`]).
//!
//! Each attempt gets a working folder named after it, holding `started` (created exclusively:
//! an attempt is never started twice), `pid` and `exit` (the exit status, written when the
//! process ends). After a restart `check` reads these files, so processes that outlived
//! propeller are re-attached to, not restarted.
//!
//! Its stdout and stderr go to two files of their own ([`log_path`]): with local storage
//! straight into the attempt's output prefix (`logs/stdout.txt`, `logs/stderr.txt`, where
//! admin's log route reads them, while the task runs too); with a bucket into the working
//! folder, and the driver stores them there once the attempt ended; until then admin's log
//! route reads them from there through [`ProcessPlugin::live_logs`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use alula_idl::flyteidl::core::{task_template, TaskNodeOverrides, TaskTemplate};
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::plugin::{Attempt, AttemptStatus, LogData, Plugin, PluginError, Waker};
use crate::template::TemplateVars;

mod live_logs;
pub mod pod_task;
pub mod run_as;
pub mod task_env;

pub use live_logs::WorkFolderLogs;
pub use run_as::{TaskUser, TaskUserError};

/// How long an aborted process gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// How often a process that outlived a propeller restart (not our child) is checked on.
const ORPHAN_POLL: Duration = Duration::from_millis(250);
/// How much of the log an error message quotes.
const LOG_TAIL_BYTES: u64 = 2000;

#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    /// Parent of the attempts' working folders.
    pub work_root: PathBuf,
    /// Folders put first on `PATH` (the Python environment's `bin`), so `pyflyte-execute` or
    /// `alula-execute` resolve to the configured environment.
    pub path_prefix: Vec<PathBuf>,
    /// Extra environment for every task.
    pub env: BTreeMap<String, String>,
    /// Variables of the server's environment tasks get besides [`task_env`]'s (the
    /// `task_env` setting).
    pub inherit_env: Vec<String>,
}

pub struct ProcessPlugin {
    config: ProcessConfig,
    /// Attempts whose process we spawned (and whose exit we will see), by unique name.
    children: Mutex<HashMap<String, u32>>,
    /// Who task processes run as when not the server's user ([`run_as`]).
    task_user: Option<TaskUser>,
}

impl ProcessPlugin {
    pub fn new(config: ProcessConfig) -> Self {
        Self {
            config,
            children: Mutex::new(HashMap::new()),
            task_user: None,
        }
    }

    /// Runs tasks as `user` (see [`TaskUser::from_setting`]; `None`: as the server's user).
    pub fn with_task_user(mut self, user: Option<TaskUser>) -> Self {
        self.task_user = user;
        self
    }

    /// Admin's source of the logs of attempts running here whose output prefix is not a local
    /// folder (a bucket): until the attempt ends they are only in its working folder.
    pub fn live_logs(&self) -> std::sync::Arc<dyn alula_plane::logs::LiveLogs> {
        std::sync::Arc::new(WorkFolderLogs::new(self.config.work_root.clone()))
    }

    fn dir(&self, attempt: &Attempt) -> PathBuf {
        self.config.work_root.join(attempt.unique_name())
    }

    fn path_var(&self) -> String {
        let mut parts: Vec<String> = self
            .config
            .path_prefix
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Ok(path) = std::env::var("PATH") {
            parts.push(path);
        }
        parts.join(":")
    }
}

/// The command line a task registered (template variables not filled in): its container's, or
/// its pod's primary container's (see [`pod_task`]); `None` when it has neither.
pub fn task_command(
    task: &TaskTemplate,
    overrides: Option<&TaskNodeOverrides>,
) -> Result<Option<Vec<String>>, PluginError> {
    if let Some(c) = pod_task::primary_container(task, overrides)? {
        return Ok(Some(c.command.into_iter().chain(c.args).collect()));
    }
    Ok(match &task.target {
        Some(task_template::Target::Container(c)) => {
            Some(c.command.iter().chain(&c.args).cloned().collect())
        }
        _ => None,
    })
}

/// The command line of a container task (or of a pod task's primary container) with the
/// template variables filled in.
pub fn command_line(attempt: &Attempt) -> Result<Vec<String>, PluginError> {
    let Some(argv) = task_command(&attempt.task, attempt.overrides.as_ref())? else {
        return Err(PluginError::Invalid(format!(
            "task {} has no container to run",
            task_name(&attempt.task)
        )));
    };
    refuse_raw_container(&attempt.task)?;
    let values = template_values(attempt);
    let argv = argv
        .iter()
        .map(|a| values.render(a))
        .collect::<Result<Vec<String>, String>>()
        .map_err(|e| PluginError::Invalid(format!("task {}: {e}", task_name(&attempt.task))))?;
    if argv.is_empty() {
        return Err(PluginError::Invalid(format!(
            "task {} has an empty command",
            task_name(&attempt.task)
        )));
    }
    Ok(argv)
}

/// Raw containers (flytekit's `ContainerTask`) need their image and the copilot around it
/// (inputs as files before, outputs from files after): a pod's business. A local process has
/// neither, so they are refused with a message saying where they run.
pub fn refuse_raw_container(task: &TaskTemplate) -> Result<(), PluginError> {
    let data_config = match &task.target {
        Some(task_template::Target::Container(c)) => c.data_config.as_ref(),
        Some(task_template::Target::K8sPod(k)) => k.data_config.as_ref(),
        _ => None,
    };
    if data_config.is_some_and(|d| d.enabled) {
        return Err(PluginError::Invalid(format!(
            "task {} is a raw container ({}): raw-container tasks need the Kubernetes plugin \
             (start the server with a `kubernetes` setting); the local process plugin has no \
             container runtime",
            task_name(task),
            task.r#type
        )));
    }
    Ok(())
}

/// The environment of a container task: the container's variables (a pod task's: its primary
/// container's plain `value`s), then the execution's `envs` (they override the task's, as in a
/// Flyte pod), then Flyte's own (`FLYTE_INTERNAL_*` name the attempt and no setting may change
/// them).
pub fn environment(attempt: &Attempt) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    // An invalid pod has no command either: `command_line` reports it.
    if let Ok(Some(primary)) =
        pod_task::primary_container(&attempt.task, attempt.overrides.as_ref())
    {
        env.extend(primary.env);
    } else if let Some(task_template::Target::Container(container)) = &attempt.task.target {
        for kv in &container.env {
            env.insert(kv.key.clone(), kv.value.clone());
        }
    }
    env.extend(attempt.settings.envs.clone());
    env.extend(attempt.env.clone());
    env
}

/// flytekit configures its S3 access from `FLYTE_AWS_*`, not the standard `AWS_*` the server
/// reads (and every task inherits): the server's settings under flytekit's names too, so that
/// `pyflyte-execute` reaches the bucket the inputs are in. Names already set are kept.
pub fn flytekit_storage_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    // AWS_ENDPOINT_URL after the older AWS_ENDPOINT: it wins when both are set.
    const NAMES: [(&str, &str); 4] = [
        ("AWS_ENDPOINT", "FLYTE_AWS_ENDPOINT"),
        ("AWS_ENDPOINT_URL", "FLYTE_AWS_ENDPOINT"),
        ("AWS_ACCESS_KEY_ID", "FLYTE_AWS_ACCESS_KEY_ID"),
        ("AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_SECRET_ACCESS_KEY"),
    ];
    let env: BTreeMap<String, String> = env.into_iter().collect();
    NAMES
        .iter()
        .filter(|(_, flyte)| !env.contains_key(*flyte))
        .filter_map(|(aws, flyte)| Some((flyte.to_string(), env.get(*aws)?.clone())))
        .collect()
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

pub fn template_values(attempt: &Attempt) -> TemplateVars<'_> {
    TemplateVars {
        input: display(&attempt.inputs_path),
        input_prefix: attempt
            .inputs_path
            .parent()
            .map(display)
            .unwrap_or_default(),
        output_prefix: display(&attempt.output_prefix),
        raw_output_prefix: display(&attempt.raw_output_prefix),
        checkpoint_prefix: display(&attempt.checkpoint_prefix),
        prev_checkpoint_prefix: attempt
            .prev_checkpoint_prefix
            .as_deref()
            .map(display)
            .unwrap_or_default(),
        per_retry_unique_key: attempt.unique_name(),
        inputs: Some(&attempt.inputs),
    }
}

pub(crate) fn task_name(task: &TaskTemplate) -> String {
    task.id
        .as_ref()
        .map(|id| format!("{}:{}", id.name, id.version))
        .unwrap_or_else(|| "<unnamed>".into())
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_string()
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Where the process plugin writes an attempt's `stream` (`stdout` or `stderr`): in its output
/// prefix when that is a local folder, else in its working folder `dir`.
pub fn log_path(attempt: &Attempt, dir: &Path, stream: &str) -> PathBuf {
    if attempt.output_prefix.is_absolute() {
        attempt
            .output_prefix
            .join("logs")
            .join(format!("{stream}.txt"))
    } else {
        dir.join(format!("{stream}.txt"))
    }
}

/// The end of what a stopped attempt printed: its stderr (where tracebacks go), else stdout.
pub(crate) fn attempt_log_tail(attempt: &Attempt, dir: &Path) -> String {
    let tail = log_tail(&log_path(attempt, dir, "stderr"));
    if tail.is_empty() {
        log_tail(&log_path(attempt, dir, "stdout"))
    } else {
        tail
    }
}

fn exited(attempt: &Attempt, dir: &Path, exit_code: Option<i32>) -> AttemptStatus {
    AttemptStatus::Exited {
        exit_code,
        message: attempt_log_tail(attempt, dir),
    }
}

#[async_trait]
impl Plugin for ProcessPlugin {
    fn name(&self) -> &'static str {
        "process"
    }

    fn can_run(&self, task: &TaskTemplate) -> bool {
        // A pod task runs its primary container's command; the rest of the pod is ignored.
        matches!(
            task.target,
            Some(task_template::Target::Container(_)) | Some(task_template::Target::K8sPod(_))
        )
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let mut argv = command_line(attempt)?;
        // Before any marker: a secret that does not exist fails the attempt, naming it.
        let secret_env = crate::secrets::local_env(attempt)?;
        // A pod has a file system of its own; here every attempt shares the machine's. The
        // code bundle goes into the attempt's folder (the working directory) instead of the
        // image's directory (flytekit's dynamic tasks ask for `/root`), so concurrent attempts
        // never unpack over each other.
        if let Some(i) = argv.iter().position(|a| a == "--dest-dir") {
            if let Some(value) = argv.get_mut(i + 1) {
                *value = ".".into();
            }
        }
        let dir = self.dir(attempt);
        let io = |e: std::io::Error| {
            PluginError::Transient(format!("attempt folder {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Local storage: the folders a pod's volume would have. Object storage (s3://) has no
        // folders to make.
        for p in [&attempt.output_prefix, &attempt.raw_output_prefix] {
            if p.is_absolute() {
                std::fs::create_dir_all(p).map_err(io)?;
            }
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join("started"))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(PluginError::AlreadyStarted(attempt.unique_name()))
            }
            Err(e) => return Err(io(e)),
        }
        let stdout_path = log_path(attempt, &dir, "stdout");
        if let Some(parent) = stdout_path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let stdout = std::fs::File::create(&stdout_path).map_err(io)?;
        let stderr = std::fs::File::create(log_path(attempt, &dir, "stderr")).map_err(io)?;
        // As another user the task works in a folder of its own inside the attempt's, which
        // stays the server's: the markers the server writes there later (`exit`) cannot have
        // been replaced by links to files elsewhere.
        let work_dir = match &self.task_user {
            Some(user) => {
                let home = dir.join("home");
                user.make_folder(&home).map_err(io)?;
                for p in [&attempt.output_prefix, &attempt.raw_output_prefix] {
                    if p.is_absolute() {
                        user.give(p).map_err(io)?;
                    }
                }
                home
            }
            None => dir.clone(),
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&work_dir)
            // Nothing of the server's environment but what tasks need ([`task_env`]).
            .env_clear()
            .envs(task_env::inherited(
                std::env::vars(),
                &self.config.inherit_env,
            ))
            .env("PATH", self.path_var())
            // Python buffers what it prints into a file until 8 KiB or the end; unbuffered,
            // a running task's lines are in its log as it prints them (a task may still set
            // its own value).
            .env("PYTHONUNBUFFERED", "1")
            .envs(flytekit_storage_env(std::env::vars()))
            .envs(&self.config.env)
            .envs(environment(attempt))
            .envs(secret_env)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: abort signals the task and everything it spawned
            // (pyflyte-fast-execute runs pyflyte-execute as a child), and a Ctrl-C aimed at
            // propeller's terminal does not reach it.
            .process_group(0);
        if let Some(user) = &self.task_user {
            user.apply(&mut cmd, &work_dir);
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot run {:?}: {e}", argv[0]);
                let _ = std::fs::write(dir.join("spawn-error"), &message);
                return Err(PluginError::Invalid(message));
            }
        };
        let pid = child.id().unwrap_or_default();
        std::fs::write(dir.join("pid"), pid.to_string()).map_err(io)?;
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(attempt.unique_name(), pid);
        let name = attempt.unique_name();
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => status.code().unwrap_or_else(|| {
                    -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
                }),
                Err(_) => -1,
            };
            if let Err(e) = std::fs::write(dir.join("exit"), code.to_string()) {
                tracing::warn!(attempt = %name, error = %e, "cannot record exit status");
            }
            waker.wake();
        });
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, waker: Waker) -> Result<AttemptStatus, PluginError> {
        let dir = self.dir(attempt);
        if let Ok(code) = std::fs::read_to_string(dir.join("exit")) {
            self.children
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&attempt.unique_name());
            return Ok(exited(attempt, &dir, code.trim().parse().ok()));
        }
        if let Ok(message) = std::fs::read_to_string(dir.join("spawn-error")) {
            return Ok(AttemptStatus::Failed { message });
        }
        let ours = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&attempt.unique_name());
        if ours {
            return Ok(AttemptStatus::Running);
        }
        match read_pid(&dir) {
            Some(pid) if alive(pid) => {
                // It outlived a restart: not our child, so nobody will see it exit. Watch it.
                self.children
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(attempt.unique_name(), pid);
                tokio::spawn(async move {
                    while alive(pid) {
                        tokio::time::sleep(ORPHAN_POLL).await;
                    }
                    // Its exit status is lost with its parent; the outputs tell the rest.
                    let _ = std::fs::write(dir.join("exit"), "");
                    waker.wake();
                });
                Ok(AttemptStatus::Running)
            }
            Some(_) => Ok(exited(attempt, &dir, None)),
            None if dir.join("started").exists() => Ok(AttemptStatus::Lost {
                message: "propeller stopped while starting this attempt".into(),
            }),
            None => Ok(AttemptStatus::NotStarted),
        }
    }

    fn log_streams(&self) -> &'static [&'static str] {
        &["stdout", "stderr"]
    }

    async fn logs(&self, attempt: &Attempt) -> Vec<(&'static str, LogData)> {
        let dir = self.dir(attempt);
        ["stdout", "stderr"]
            .into_iter()
            .map(|stream| (stream, log_path(attempt, &dir, stream)))
            .filter(|(_, path)| path.exists())
            .map(|(stream, path)| (stream, LogData::File(path)))
            .collect()
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let dir = self.dir(attempt);
        let Some(pid) = read_pid(&dir) else {
            return Ok(());
        };
        if !alive(pid) {
            return Ok(());
        }
        let group = Pid::from_raw(pid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        tokio::spawn(async move {
            tokio::time::sleep(KILL_GRACE).await;
            if alive(pid) {
                let _ = killpg(group, Signal::SIGKILL);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn s3_settings_reach_flytekit_under_its_names() {
        let env = flytekit_storage_env(vars(&[
            ("AWS_ENDPOINT", "http://old:1"),
            ("AWS_ENDPOINT_URL", "http://moto:5000"),
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("HOME", "/root"),
        ]));
        assert_eq!(
            env,
            BTreeMap::from([
                (
                    "FLYTE_AWS_ENDPOINT".to_string(),
                    "http://moto:5000".to_string()
                ),
                ("FLYTE_AWS_ACCESS_KEY_ID".to_string(), "id".to_string()),
                (
                    "FLYTE_AWS_SECRET_ACCESS_KEY".to_string(),
                    "secret".to_string()
                ),
            ])
        );
        // flytekit settings given explicitly are not overridden.
        let env = flytekit_storage_env(vars(&[
            ("AWS_ACCESS_KEY_ID", "id"),
            ("FLYTE_AWS_ACCESS_KEY_ID", "mine"),
        ]));
        assert!(env.is_empty(), "{env:?}");
    }

    #[test]
    fn raw_containers_are_refused_with_a_reason() {
        use alula_idl::flyteidl::core::{Container, DataLoadingConfig};
        let mut task = TaskTemplate {
            r#type: "raw-container".into(),
            target: Some(task_template::Target::Container(Container {
                image: "alpine".into(),
                command: vec!["echo".into()],
                data_config: Some(DataLoadingConfig {
                    enabled: true,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let err = refuse_raw_container(&task)
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("raw-container tasks need the Kubernetes plugin"),
            "{err}"
        );
        if let Some(task_template::Target::Container(c)) = &mut task.target {
            c.data_config = None;
        }
        assert!(refuse_raw_container(&task).is_ok());
    }
}
