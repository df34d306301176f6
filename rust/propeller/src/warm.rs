//! The warm-worker plugin: Alula's own Python tasks (`alula-execute`, `alula-map-execute`,
//! behind `alula-fast-execute` when fast-registered) run in pools of long-lived Python
//! processes (`python -m alula.worker`), one pool per code bundle, so an attempt costs the task
//! and not a Python start, imports and a bundle download. Flyte pays that cold start on every
//! task; Union sells warm containers.
//!
//! A worker runs one attempt at a time. For each it points its stdout and stderr (fds 1 and 2)
//! at the attempt's own files in its output prefix (`logs/stdout.txt`, `logs/stderr.txt`,
//! where admin's log route reads them) and back to the worker's log afterwards; the protocol
//! runs on a descriptor of its own, which no redirection touches. An attempt's `.alula-started` marker in its output folder makes a second start impossible and
//! tells a restarted propeller that an attempt it cannot find in memory was lost with its
//! worker (a system error, retried under the next attempt number).
//!
//! A pool with no work for `idle_timeout` stops its workers: every registration makes a new
//! bundle, so pools kept forever would pile up Python processes. The next task for that bundle
//! starts a pool again.
//!
//! The workers read inputs and write outputs as local files: the plugin serves local storage
//! only (the server leaves it out when execution data lives in a bucket, and Alula's tasks then
//! run through the process plugin).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use alula_idl::flyteidl::core::TaskTemplate;
use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::plugin::{Attempt, AttemptStatus, LogData, Plugin, PluginError, Waker};
use crate::process::{attempt_log_tail, command_line, environment, log_tail, TaskUser};

const STARTED_MARKER: &str = ".alula-started";
const ENTRYPOINTS: [&str; 2] = ["alula-execute", "alula-map-execute"];
/// How long a pool may go without work before its workers stop, unless configured.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// Holds unpacked code bundles and the workers' logs.
    pub work_root: PathBuf,
    /// Folders searched for `python` (the environment Alula is installed in), then put first
    /// on the workers' `PATH`.
    pub path_prefix: Vec<PathBuf>,
    /// Workers per code bundle.
    pub workers: usize,
    /// A pool with no attempt queued or running for this long stops its workers.
    pub idle_timeout: Duration,
    /// Variables of the server's environment workers get besides
    /// [`crate::process::task_env`]'s (the `task_env` setting).
    pub inherit_env: Vec<String>,
}

impl Default for WarmConfig {
    fn default() -> Self {
        Self {
            work_root: PathBuf::new(),
            path_prefix: Vec::new(),
            workers: 0,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            inherit_env: Vec::new(),
        }
    }
}

/// An Alula task's command line, split: the fast-registration bundle (if any), the entrypoint
/// and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmCommand {
    pub bundle: Option<String>,
    pub entrypoint: String,
    pub args: Vec<String>,
}

fn base(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

/// `alula-fast-execute --additional-distribution URI --dest-dir D -- alula-execute ARGS` or
/// `alula-execute ARGS`; anything else is not for warm workers.
pub fn parse_command(argv: &[String]) -> Option<WarmCommand> {
    let first = argv.first()?;
    if base(first) == "alula-fast-execute" {
        let bundle = argv
            .windows(2)
            .find(|w| w[0] == "--additional-distribution")
            .map(|w| w[1].clone());
        let split = argv.iter().position(|a| a == "--")?;
        let mut inner = parse_command(&argv[split + 1..])?;
        inner.bundle = bundle;
        return Some(inner);
    }
    let entrypoint = base(first);
    ENTRYPOINTS.contains(&entrypoint).then(|| WarmCommand {
        bundle: None,
        entrypoint: entrypoint.to_string(),
        args: argv[1..].to_vec(),
    })
}

/// A container's command, or a pod task's primary container's: both run here alike.
fn template_command(task: &TaskTemplate) -> Option<Vec<String>> {
    crate::process::task_command(task, None).ok().flatten()
}

#[derive(Debug, Clone)]
enum Slot {
    Queued,
    Running { pid: u32 },
    Done { code: i32 },
    Lost { message: String },
    Aborted,
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    entrypoint: &'a str,
    argv: &'a [String],
    env: &'a BTreeMap<String, String>,
    /// Files the attempt's stdout and stderr go to.
    stdout: &'a Path,
    stderr: &'a Path,
}

#[derive(Deserialize)]
struct Response {
    code: i32,
}

struct Job {
    name: String,
    entrypoint: String,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    stdout: PathBuf,
    stderr: PathBuf,
    waker: Waker,
}

type Slots = Arc<Mutex<HashMap<String, Slot>>>;
type Pools = tokio::sync::Mutex<HashMap<PathBuf, Pool>>;

struct Pool {
    jobs: mpsc::UnboundedSender<Job>,
    activity: Arc<Activity>,
}

/// A pool's attempts in flight (sent and not yet finished, queued ones included) and since
/// when it has had none: what decides that it is idle.
struct Activity(Mutex<(usize, Instant)>);

impl Activity {
    fn new() -> Self {
        Self(Mutex::new((0, Instant::now())))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) {
        self.state().0 += 1;
    }

    fn end(&self) {
        let mut state = self.state();
        state.0 = state.0.saturating_sub(1);
        state.1 = Instant::now();
    }

    /// How much longer the pool must stay idle to have been idle for `timeout`: zero when it
    /// has, `None` while it has work.
    fn idle_remaining(&self, timeout: Duration) -> Option<Duration> {
        let (in_flight, since) = *self.state();
        (in_flight == 0).then(|| timeout.saturating_sub(since.elapsed()))
    }
}

/// Ends one attempt's share of the pool's activity however the worker is done with it.
struct Finished(Arc<Activity>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.end();
    }
}

pub struct WarmPlugin {
    config: WarmConfig,
    /// Who the workers run as when not the server's user ([`crate::process::run_as`]).
    task_user: Option<TaskUser>,
    pools: Arc<Pools>,
    slots: Slots,
}

fn lock(slots: &Slots) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

impl WarmPlugin {
    pub fn new(config: WarmConfig) -> Self {
        Self {
            config,
            task_user: None,
            pools: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Runs the workers as `user` (see [`TaskUser::from_setting`]; `None`: as the server's).
    pub fn with_task_user(mut self, user: Option<TaskUser>) -> Self {
        self.task_user = user;
        self
    }

    fn python(&self) -> PathBuf {
        self.config
            .path_prefix
            .iter()
            .map(|d| d.join("python"))
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("python3"))
    }

    /// The bundle unpacked (once) into a folder named after its URI.
    async fn bundle_dir(&self, bundle: Option<&str>) -> Result<PathBuf, PluginError> {
        let Some(uri) = bundle else {
            let dir = self.config.work_root.join("no-bundle");
            std::fs::create_dir_all(&dir).map_err(|e| PluginError::Transient(e.to_string()))?;
            return Ok(dir);
        };
        let digest: String = Sha256::digest(uri.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.config.work_root.join("bundles").join(digest);
        if dir.exists() {
            return Ok(dir);
        }
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        if path.contains("://") {
            return Err(PluginError::Invalid(format!(
                "code bundle {uri}: only local files can be unpacked by this propeller"
            )));
        }
        let archive = PathBuf::from(path);
        let target = dir.clone();
        tokio::task::spawn_blocking(move || unpack(&archive, &target))
            .await
            .map_err(|e| PluginError::Transient(e.to_string()))??;
        Ok(dir)
    }

    fn spawn_pool(&self, dir: &Path) -> Result<Pool, PluginError> {
        // The workers' HOME: the bundle's folder stays the server's (read-only to them).
        let home = dir.join(".alula-home");
        if let Some(user) = &self.task_user {
            user.make_folder(&home)
                .map_err(|e| PluginError::Transient(format!("{}: {e}", home.display())))?;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let activity = Arc::new(Activity::new());
        let mut path = self
            .config
            .path_prefix
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>();
        if let Ok(p) = std::env::var("PATH") {
            path.push(p);
        }
        for i in 0..self.config.workers.max(1) {
            let worker = WorkerSpec {
                python: self.python(),
                dir: dir.to_path_buf(),
                path: path.join(":"),
                log: dir.join(format!(".alula-worker-{i}.log")),
                user: self.task_user.clone(),
                home: home.clone(),
                inherit_env: self.config.inherit_env.clone(),
            };
            tokio::spawn(worker_loop(
                worker,
                rx.clone(),
                self.slots.clone(),
                activity.clone(),
            ));
        }
        tokio::spawn(stop_when_idle(
            Arc::downgrade(&self.pools),
            dir.to_path_buf(),
            activity.clone(),
            self.config.idle_timeout,
        ));
        Ok(Pool { jobs: tx, activity })
    }
}

/// Removes the pool of `dir` once it has had no work for `timeout`. Its job queue closes with
/// it, so its workers finish and stop their processes; a later task makes a new pool.
async fn stop_when_idle(
    pools: Weak<Pools>,
    dir: PathBuf,
    activity: Arc<Activity>,
    timeout: Duration,
) {
    loop {
        let wait = match activity.idle_remaining(timeout) {
            Some(left) if left.is_zero() => {
                let Some(pools) = pools.upgrade() else {
                    return; // the plugin is gone, and its pools with it
                };
                let mut pools = pools.lock().await;
                // Checked again under the lock `start` sends under: no job can slip into a
                // queue that is closing.
                if activity.idle_remaining(timeout) == Some(Duration::ZERO) {
                    if pools
                        .get(&dir)
                        .is_some_and(|p| Arc::ptr_eq(&p.activity, &activity))
                    {
                        pools.remove(&dir);
                    }
                    tracing::debug!(bundle = %dir.display(), "idle warm pool stopped");
                    return;
                }
                continue;
            }
            Some(left) => left,
            None => timeout,
        };
        tokio::time::sleep(wait).await;
    }
}

fn unpack(archive: &Path, target: &Path) -> Result<(), PluginError> {
    let file = std::fs::File::open(archive)
        .map_err(|e| PluginError::Invalid(format!("code bundle {}: {e}", archive.display())))?;
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&tmp)
        .map_err(|e| PluginError::Invalid(format!("code bundle {}: {e}", archive.display())))?;
    // Renaming makes the bundle appear whole or not at all; a concurrent unpack of the same
    // bundle loses the race harmlessly.
    if std::fs::rename(&tmp, target).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

struct WorkerSpec {
    python: PathBuf,
    dir: PathBuf,
    path: String,
    log: PathBuf,
    user: Option<TaskUser>,
    home: PathBuf,
    inherit_env: Vec<String>,
}

struct Process {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
}

fn spawn_worker(spec: &WorkerSpec) -> std::io::Result<Process> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let pythonpath = match std::env::var("PYTHONPATH") {
        Ok(p) if !p.is_empty() => format!("{}:{p}", spec.dir.display()),
        _ => spec.dir.display().to_string(),
    };
    let mut command = tokio::process::Command::new(&spec.python);
    command
        .args(["-m", "alula.worker"])
        .current_dir(&spec.dir)
        // Workers run the tasks' code: nothing of the server's environment but what tasks
        // need ([`task_env`](crate::process::task_env)).
        .env_clear()
        .envs(crate::process::task_env::inherited(
            std::env::vars(),
            &spec.inherit_env,
        ))
        .env("PATH", &spec.path)
        .env("PYTHONPATH", pythonpath)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    if let Some(user) = &spec.user {
        user.apply(&mut command, &spec.home);
    }
    let mut child = command.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    Ok(Process {
        child,
        stdin,
        stdout: BufReader::new(stdout),
    })
}

/// Runs one attempt on `process`; Err means the worker is gone.
async fn run_job(process: &mut Process, job: &Job, id: u64) -> Result<i32, String> {
    let request = Request {
        id,
        entrypoint: &job.entrypoint,
        argv: &job.argv,
        env: &job.env,
        stdout: &job.stdout,
        stderr: &job.stderr,
    };
    let mut line = serde_json::to_string(&request).map_err(|e| e.to_string())?;
    line.push('\n');
    process
        .stdin
        .write_all(line.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    let n = process
        .stdout
        .read_line(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the warm worker exited while running the task".into());
    }
    let response: Response = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    Ok(response.code)
}

async fn worker_loop(
    spec: WorkerSpec,
    jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    slots: Slots,
    activity: Arc<Activity>,
) {
    let mut process: Option<Process> = None;
    let mut next_id = 0u64;
    loop {
        let Some(job) = jobs.lock().await.recv().await else {
            // The pool was stopped (idle) or the plugin is gone: so is the worker. Killing
            // also waits for it, so no zombie is left behind.
            if let Some(mut p) = process.take() {
                let _ = p.child.kill().await;
            }
            return;
        };
        let _finished = Finished(activity.clone());
        if !matches!(lock(&slots).get(&job.name), Some(Slot::Queued)) {
            continue; // aborted while queued
        }
        if process.is_none() {
            match spawn_worker(&spec) {
                Ok(p) => process = Some(p),
                Err(e) => {
                    let message = format!("cannot start {}: {e}", spec.python.display());
                    lock(&slots).insert(job.name.clone(), Slot::Lost { message });
                    job.waker.wake();
                    continue;
                }
            }
        }
        let Some(p) = process.as_mut() else { continue };
        let pid = p.child.id().unwrap_or_default();
        lock(&slots).insert(job.name.clone(), Slot::Running { pid });
        next_id += 1;
        let result = run_job(p, &job, next_id).await;
        let slot = match result {
            Ok(code) => Slot::Done { code },
            Err(message) => {
                // The worker died (or was killed by an abort): replace it.
                if let Some(mut dead) = process.take() {
                    let _ = dead.child.kill().await;
                }
                // What the attempt printed last is in its own stderr; the worker's log holds
                // what happened outside any attempt.
                let tail = Some(log_tail(&job.stderr))
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| log_tail(&spec.log));
                Slot::Lost {
                    message: format!("{message}; its log ends with:\n{tail}"),
                }
            }
        };
        {
            let mut slots = lock(&slots);
            if !matches!(slots.get(&job.name), Some(Slot::Aborted)) {
                slots.insert(job.name.clone(), slot);
            }
        }
        job.waker.wake();
    }
}

#[async_trait]
impl Plugin for WarmPlugin {
    fn name(&self) -> &'static str {
        "warm"
    }

    fn can_run(&self, task: &TaskTemplate) -> bool {
        template_command(task).is_some_and(|argv| parse_command(&argv).is_some())
    }

    fn whole_array_inputs(&self) -> bool {
        // Each element gets its own small inputs file: a worker reading a 100,000-element
        // list for every element would be quadratic.
        false
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let argv = command_line(attempt)?;
        // Before any marker: a secret that does not exist fails the attempt, naming it.
        let secret_env = crate::secrets::local_env(attempt)?;
        let command = parse_command(&argv).ok_or_else(|| {
            PluginError::Invalid("not an Alula task command (alula-execute)".into())
        })?;
        if !attempt.output_prefix.is_absolute() {
            return Err(PluginError::Invalid(format!(
                "warm workers need local storage, not {}",
                attempt.output_prefix.display()
            )));
        }
        std::fs::create_dir_all(&attempt.output_prefix)
            .map_err(|e| PluginError::Transient(e.to_string()))?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(attempt.output_prefix.join(STARTED_MARKER))
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(PluginError::AlreadyStarted(attempt.unique_name()))
            }
            Err(e) => return Err(PluginError::Transient(e.to_string())),
        }
        let logs = attempt.output_prefix.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| PluginError::Transient(e.to_string()))?;
        // The worker writes the outputs and opens the attempt's log files itself.
        if let Some(user) = &self.task_user {
            let mut folders = vec![attempt.output_prefix.clone(), logs.clone()];
            if attempt.raw_output_prefix.is_absolute() {
                std::fs::create_dir_all(&attempt.raw_output_prefix)
                    .map_err(|e| PluginError::Transient(e.to_string()))?;
                folders.push(attempt.raw_output_prefix.clone());
            }
            for folder in folders {
                user.give(&folder)
                    .map_err(|e| PluginError::Transient(format!("{}: {e}", folder.display())))?;
            }
        }
        let dir = self.bundle_dir(command.bundle.as_deref()).await?;
        let name = attempt.unique_name();
        lock(&self.slots).insert(name.clone(), Slot::Queued);
        let job = Job {
            name,
            entrypoint: command.entrypoint,
            argv: command.args,
            env: environment(attempt).into_iter().chain(secret_env).collect(),
            stdout: logs.join("stdout.txt"),
            stderr: logs.join("stderr.txt"),
            waker,
        };
        let mut pools = self.pools.lock().await;
        let pool = match pools.entry(dir.clone()) {
            std::collections::hash_map::Entry::Occupied(pool) => pool.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => match self.spawn_pool(&dir) {
                Ok(pool) => entry.insert(pool),
                Err(e) => {
                    lock(&self.slots).remove(&job.name);
                    return Err(e);
                }
            },
        };
        pool.activity.begin();
        pool.jobs.send(job).map_err(|_| {
            pool.activity.end();
            PluginError::Transient("the warm pool is gone".into())
        })
    }

    async fn check(&self, attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        let name = attempt.unique_name();
        let slot = lock(&self.slots).get(&name).cloned();
        let status = match slot {
            Some(Slot::Queued | Slot::Running { .. }) => return Ok(AttemptStatus::Running),
            Some(Slot::Done { code }) => AttemptStatus::Exited {
                exit_code: Some(code),
                message: attempt_log_tail(attempt, &attempt.output_prefix),
            },
            Some(Slot::Lost { message }) => AttemptStatus::Lost { message },
            Some(Slot::Aborted) => AttemptStatus::Lost {
                message: "aborted".into(),
            },
            None => {
                // Not ours: started by a propeller that has since stopped (with its workers).
                let out = &attempt.output_prefix;
                if ["outputs.pb", "error.pb", "futures.pb"]
                    .iter()
                    .any(|f| out.join(f).exists())
                {
                    AttemptStatus::Exited {
                        exit_code: Some(0),
                        message: String::new(),
                    }
                } else if out.join(STARTED_MARKER).exists() {
                    AttemptStatus::Lost {
                        message: "its warm worker stopped with the propeller that ran it".into(),
                    }
                } else {
                    AttemptStatus::NotStarted
                }
            }
        };
        if !matches!(status, AttemptStatus::NotStarted) {
            lock(&self.slots).remove(&name);
        }
        Ok(status)
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let name = attempt.unique_name();
        let previous = lock(&self.slots).insert(name, Slot::Aborted);
        if let Some(Slot::Running { pid }) = previous {
            // A Python call cannot be interrupted from outside: the worker goes, and its
            // loop starts a fresh one.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        Ok(())
    }

    fn log_streams(&self) -> &'static [&'static str] {
        &["stdout", "stderr"]
    }

    async fn logs(&self, attempt: &Attempt) -> Vec<(&'static str, LogData)> {
        // Written in place (warm workers need local storage): the driver finds them stored.
        ["stdout", "stderr"]
            .into_iter()
            .map(|stream| {
                let path = attempt
                    .output_prefix
                    .join("logs")
                    .join(format!("{stream}.txt"));
                (stream, LogData::File(path))
            })
            .collect()
    }

    async fn finalize(&self, attempt: &Attempt) -> Result<(), PluginError> {
        lock(&self.slots).remove(&attempt.unique_name());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn recognises_alula_commands_only() {
        let fast = parse_command(&argv(
            "alula-fast-execute --additional-distribution file:///b.tgz --dest-dir . -- alula-map-execute --inputs x",
        ))
        .unwrap();
        assert_eq!(fast.bundle.as_deref(), Some("file:///b.tgz"));
        assert_eq!(fast.entrypoint, "alula-map-execute");
        assert_eq!(fast.args, argv("--inputs x"));
        let plain = parse_command(&argv("/venv/bin/alula-execute --inputs y")).unwrap();
        assert_eq!(
            (plain.bundle, plain.entrypoint.as_str()),
            (None, "alula-execute")
        );
        assert!(parse_command(&argv("pyflyte-execute --inputs y")).is_none());
        assert!(parse_command(&argv(
            "pyflyte-fast-execute --additional-distribution s3://x --dest-dir . -- pyflyte-execute"
        ))
        .is_none());
        assert!(parse_command(&[]).is_none());
    }
}
