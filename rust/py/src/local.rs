//! Local runs: the engine drives the workflow; Python runs only the task bodies.
//!
//! `run_local` takes the compiled closure and the inputs as protobuf bytes and a few Python
//! callbacks (resolve a task by name, run a child launch plan, answer a gate's signal). Task
//! attempts run inline on the calling thread when `max_parallelism` is 1 (the fastest path: no
//! thread hand-offs), or on worker threads that each take the GIL only around the call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::SystemTime;

use alula_core::cache::{cache_key, CacheKey};
use alula_engine::{Action, Execution, ExecutionSettings, NodePhase, TaskAttempt, TaskOutcome};
use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, CatalogCacheStatus, CompiledWorkflowClosure, DynamicJobSpec,
    ExecutionError, Literal, LiteralMap,
};
use prost::Message;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::convert::{map_to_values, parse_kinds, to_literal, to_python, values_to_map, Kind};
use crate::progress::Progress;

/// A Python task as the runner calls it.
struct LocalTask {
    name: String,
    func: Py<PyAny>,
    inputs: Vec<(String, Kind)>,
    /// The input names as interned Python strings, made once rather than per call.
    keys: Vec<Py<PyString>>,
    outputs: Vec<(String, Kind)>,
    /// A dynamic task's function returns an encoded `DynamicJobSpec` instead of outputs.
    dynamic: bool,
    /// The inputs are the function's positional parameters, in order: call without a kwargs
    /// dict (cheaper for CPython).
    positional: bool,
}

/// The on-disk cache of task outputs for local runs, keyed like the remote cache.
struct LocalCache {
    dir: Option<PathBuf>,
    overwrite: bool,
}

impl LocalCache {
    fn path(&self, key: &CacheKey) -> Option<PathBuf> {
        let digest = key.digest();
        Some(
            self.dir
                .as_ref()?
                .join(&digest[..2])
                .join(format!("{digest}.pb")),
        )
    }

    fn get(&self, key: &CacheKey) -> Option<LiteralMap> {
        if self.overwrite {
            return None;
        }
        let bytes = std::fs::read(self.path(key)?).ok()?;
        LiteralMap::decode(bytes.as_slice()).ok()
    }

    /// Writes through a temporary file and a rename, so a reader never sees half an entry.
    fn put(&self, key: &CacheKey, outputs: &LiteralMap) -> std::io::Result<()> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, outputs.encode_to_vec())?;
        std::fs::rename(tmp, path)
    }
}

/// What the SDK's `resolve_task(name)` returns: `alula._bridge.local.ResolvedTask`.
#[derive(FromPyObject)]
struct ResolvedTask {
    function: Py<PyAny>,
    input_kinds: Py<PyAny>,
    output_kinds: Py<PyAny>,
    /// The function returns an encoded `DynamicJobSpec` instead of outputs.
    dynamic: bool,
    /// The inputs are the function's positional parameters, in order.
    positional: bool,
}

/// The arguments of one local run: `alula._bridge.local.LocalRunRequest`, read by attribute.
#[derive(FromPyObject)]
struct LocalRunRequest {
    /// An encoded `core.CompiledWorkflowClosure`.
    closure: Py<PyBytes>,
    inputs: Py<PyDict>,
    input_kinds: Py<PyAny>,
    output_kinds: Py<PyAny>,
    /// `resolve_task(name) -> ResolvedTask`.
    resolve_task: Py<PyAny>,
    /// `run_child(launch_plan_name, encoded LiteralMap) -> encoded LiteralMap`.
    run_child: Py<PyAny>,
    /// `answer_signal(signal_id, approve) -> encoded Literal | None`.
    answer_signal: Py<PyAny>,
    max_parallelism: u32,
    cache_dir: Option<PathBuf>,
    overwrite_cache: bool,
}

/// Why a local run failed: the node whose failure ended it and the Python exception of its
/// last attempt (None when the failure was not a Python exception, e.g. a timeout).
#[pyclass(frozen, get_all, module = "alula._native")]
pub struct LocalRunFailure {
    node_id: String,
    /// The retry attempt that failed last (0 for the first).
    attempt: u32,
    code: String,
    message: String,
    exception: Py<PyAny>,
}

/// Tasks resolved so far, by task name, plus the Python exception of each failed attempt.
struct Registry {
    cache: LocalCache,
    resolve: Py<PyAny>,
    tasks: Mutex<HashMap<String, Arc<LocalTask>>>,
    errors: Mutex<HashMap<String, Py<PyAny>>>,
}

impl Registry {
    fn task(&self, py: Python<'_>, name: &str) -> PyResult<Arc<LocalTask>> {
        if let Some(t) = self.tasks.lock().map_err(poisoned)?.get(name) {
            return Ok(Arc::clone(t));
        }
        let spec: ResolvedTask = self.resolve.bind(py).call1((name,))?.extract()?;
        let inputs = parse_kinds(spec.input_kinds.bind(py))?;
        let keys = inputs
            .iter()
            .map(|(n, _)| PyString::intern(py, n).unbind())
            .collect();
        let task = Arc::new(LocalTask {
            name: name.to_string(),
            func: spec.function,
            inputs,
            keys,
            outputs: parse_kinds(spec.output_kinds.bind(py))?,
            dynamic: spec.dynamic,
            positional: spec.positional,
        });
        self.tasks
            .lock()
            .map_err(poisoned)?
            .insert(name.to_string(), Arc::clone(&task));
        Ok(task)
    }

    /// Runs one attempt with the GIL held (or answers it from the cache); Python exceptions
    /// become user errors.
    fn run(&self, py: Python<'_>, attempt: &TaskAttempt) -> TaskOutcome {
        let key = self
            .cache
            .dir
            .as_ref()
            .and_then(|_| cache_key(&attempt.task, &attempt.inputs));
        if let Some(outputs) = key.as_ref().and_then(|k| self.cache.get(k)) {
            return TaskOutcome::Succeeded {
                outputs,
                cache_status: CatalogCacheStatus::CacheHit,
            };
        }
        let name = attempt.task.id.as_ref().map_or("", |i| i.name.as_str());
        match self
            .task(py, name)
            .and_then(|task| call(py, &task, attempt))
        {
            Ok(TaskOutcome::Succeeded {
                outputs,
                cache_status,
            }) => match &key {
                // A cache that cannot be written only costs a later re-run.
                Some(k) if self.cache.put(k, &outputs).is_ok() => TaskOutcome::Succeeded {
                    outputs,
                    cache_status: CatalogCacheStatus::CachePopulated,
                },
                _ => TaskOutcome::Succeeded {
                    outputs,
                    cache_status,
                },
            },
            Ok(outcome) => outcome,
            Err(err) => {
                let outcome = TaskOutcome::Failed(user_error(py, &err));
                if let Ok(mut errors) = self.errors.lock() {
                    errors.insert(
                        attempt.node_execution_id.clone(),
                        err.into_value(py).into_any(),
                    );
                }
                outcome
            }
        }
    }
}

fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("the local runner's task registry was poisoned by a panic")
}

fn user_error(py: Python<'_>, err: &PyErr) -> ExecutionError {
    let kind = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let text = py
        .import("traceback")
        .and_then(|tb| {
            tb.call_method1(
                "format_exception",
                (err.get_type(py), err.value(py), err.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| err.to_string());
    ExecutionError {
        code: format!("USER:{kind}"),
        message: text,
        kind: ErrorKind::User as i32,
        ..Default::default()
    }
}

fn call(py: Python<'_>, task: &LocalTask, attempt: &TaskAttempt) -> PyResult<TaskOutcome> {
    let mut values = Vec::with_capacity(task.inputs.len());
    for (name, kind) in &task.inputs {
        let lit = attempt.inputs.literals.get(name).ok_or_else(|| {
            PyValueError::new_err(format!(
                "task '{}': input '{name}' was not bound",
                task.name
            ))
        })?;
        values.push(to_python(py, lit, kind).map_err(|e| {
            PyValueError::new_err(format!("task '{}' input '{name}': {e}", task.name))
        })?);
    }
    let func = task.func.bind(py);
    let result = if task.positional {
        func.call1(PyTuple::new(py, values)?)?
    } else {
        let kwargs = PyDict::new(py);
        for (key, value) in task.keys.iter().zip(values) {
            kwargs.set_item(key.bind(py), value)?;
        }
        func.call((), Some(&kwargs))?
    };
    if task.dynamic {
        let bytes: &[u8] = result.extract()?;
        let spec =
            DynamicJobSpec::decode(bytes).map_err(|e| PyValueError::new_err(e.to_string()))?;
        return Ok(TaskOutcome::Dynamic(spec));
    }
    let mut outputs = LiteralMap::default();
    let check = |r: PyResult<Literal>, name: &str| {
        r.map_err(|e| {
            PyErr::from_type(
                e.get_type(py),
                format!("task '{}' output '{name}': {}", task.name, e.value(py)),
            )
        })
    };
    match task.outputs.as_slice() {
        [] => {}
        [(name, kind)] => {
            outputs
                .literals
                .insert(name.clone(), check(to_literal(&result, kind), name)?);
        }
        many => {
            let values = result.cast::<PyTuple>().map_err(|_| {
                PyValueError::new_err(format!(
                    "task '{}' must return a tuple of {} outputs",
                    task.name,
                    many.len()
                ))
            })?;
            if values.len() != many.len() {
                return Err(PyValueError::new_err(format!(
                    "task '{}' returned {} values for {} outputs",
                    task.name,
                    values.len(),
                    many.len()
                )));
            }
            for ((name, kind), value) in many.iter().zip(values.iter()) {
                outputs
                    .literals
                    .insert(name.clone(), check(to_literal(&value, kind), name)?);
            }
        }
    }
    Ok(TaskOutcome::Succeeded {
        outputs,
        cache_status: CatalogCacheStatus::CacheDisabled,
    })
}

/// Callbacks into the SDK for what the engine cannot do alone.
struct Hooks {
    run_child: Py<PyAny>,
    answer_signal: Py<PyAny>,
}

impl Hooks {
    fn child(
        &self,
        py: Python<'_>,
        launch_plan: &str,
        inputs: &LiteralMap,
    ) -> Result<LiteralMap, Box<ExecutionError>> {
        let result = self
            .run_child
            .bind(py)
            .call1((launch_plan, PyBytes::new(py, &inputs.encode_to_vec())))
            .and_then(|r| r.extract::<Vec<u8>>());
        match result {
            Ok(bytes) => LiteralMap::decode(bytes.as_slice()).map_err(|e| {
                Box::new(ExecutionError {
                    code: "SYSTEM:BadOutputs".into(),
                    message: e.to_string(),
                    kind: ErrorKind::System as i32,
                    ..Default::default()
                })
            }),
            Err(err) => Err(Box::new(user_error(py, &err))),
        }
    }

    fn signal(&self, py: Python<'_>, signal_id: &str, approve: bool) -> PyResult<Option<Literal>> {
        let answer = self.answer_signal.bind(py).call1((signal_id, approve))?;
        if answer.is_none() {
            return Ok(None);
        }
        let bytes: Vec<u8> = answer.extract()?;
        Literal::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// Runs a workflow locally. Returns its outputs as a dict, or a `LocalRunFailure`.
#[pyfunction]
fn run_local(py: Python<'_>, request: LocalRunRequest) -> PyResult<Py<PyAny>> {
    let closure = CompiledWorkflowClosure::decode(request.closure.as_bytes(py))
        .map_err(|e| PyValueError::new_err(format!("closure: {e}")))?;
    // Workflow inputs and outputs convert like task values: no protobuf round trip.
    let input_kinds = parse_kinds(request.input_kinds.bind(py))?;
    let output_kinds = parse_kinds(request.output_kinds.bind(py))?;
    let inputs = values_to_map(request.inputs.bind(py), &input_kinds)?;
    let max_parallelism = request.max_parallelism;
    let settings = ExecutionSettings {
        max_parallelism,
        ..Default::default()
    };
    let mut exec = Execution::new(&closure, inputs, settings)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let registry = Registry {
        cache: LocalCache {
            dir: request.cache_dir,
            overwrite: request.overwrite_cache,
        },
        resolve: request.resolve_task,
        tasks: Mutex::new(HashMap::new()),
        errors: Mutex::new(HashMap::new()),
    };
    let hooks = Hooks {
        run_child: request.run_child,
        answer_signal: request.answer_signal,
    };
    if max_parallelism == 1 {
        drive_inline(py, &mut exec, &registry, &hooks)?;
    } else {
        drive_threaded(py, &mut exec, &registry, &hooks, max_parallelism)?;
    }
    result(py, &exec, &registry, &output_kinds)
}

fn engine_err(e: alula_engine::EngineError) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// Carries out the actions that are not task attempts. Returns the earliest wake-up time.
fn handle_other(
    py: Python<'_>,
    exec: &mut Execution,
    hooks: &Hooks,
    action: Action,
    wake: &mut Option<SystemTime>,
) -> PyResult<()> {
    match action {
        Action::StartChild {
            node_execution_id,
            launch_plan,
            inputs,
        } => {
            let result = hooks.child(py, &launch_plan.name, &inputs);
            exec.child_finished(&node_execution_id, result, SystemTime::now())
                .map_err(engine_err)
        }
        Action::WaitForSignal {
            node_execution_id,
            signal_id,
            kind,
        } => {
            let approve = kind == alula_engine::SignalKind::Approve;
            match hooks.signal(py, &signal_id, approve)? {
                Some(value) => exec
                    .signal(&node_execution_id, value, SystemTime::now())
                    .map_err(engine_err),
                None => {
                    let answer = ExecutionError {
                        code: "USER:NoSignal".into(),
                        message: format!("gate {node_execution_id:?} waits for signal {signal_id:?}, which nobody answered"),
                        kind: ErrorKind::User as i32,
                        ..Default::default()
                    };
                    exec.abort(&answer.message, SystemTime::now());
                    Ok(())
                }
            }
        }
        Action::WakeAt(t) => {
            *wake = Some(wake.map_or(t, |w| w.min(t)));
            Ok(())
        }
        Action::StartTask(_) | Action::AbortTask { .. } | Action::AbortChild { .. } => Ok(()),
    }
}

fn sleep_until(py: Python<'_>, t: SystemTime) {
    if let Ok(d) = t.duration_since(SystemTime::now()) {
        py.detach(|| std::thread::sleep(d));
    }
}

fn drive_inline(
    py: Python<'_>,
    exec: &mut Execution,
    registry: &Registry,
    hooks: &Hooks,
) -> PyResult<()> {
    let mut progress = Progress::new();
    loop {
        let mut wake = None;
        let mut progressed = false;
        for action in exec.poll(SystemTime::now()) {
            match action {
                Action::StartTask(attempt) => {
                    let outcome = registry.run(py, &attempt);
                    exec.task_finished(attempt.id, outcome, SystemTime::now())
                        .map_err(engine_err)?;
                    progress.tick(exec);
                    progressed = true;
                }
                other => {
                    progressed |= !matches!(other, Action::WakeAt(_));
                    handle_other(py, exec, hooks, other, &mut wake)?;
                }
            }
        }
        if exec.phase().is_terminal() {
            progress.finish(exec);
            return Ok(());
        }
        if !progressed && !exec.has_pending_work() {
            match wake {
                Some(t) => sleep_until(py, t),
                None => return Err(PyRuntimeError::new_err("the workflow cannot make progress")),
            }
        }
    }
}

fn drive_threaded(
    py: Python<'_>,
    exec: &mut Execution,
    registry: &Registry,
    hooks: &Hooks,
    workers: u32,
) -> PyResult<()> {
    let workers = if workers == 0 { 4 } else { workers.min(64) } as usize;
    let (work_tx, work_rx) = mpsc::channel::<Box<TaskAttempt>>();
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, TaskOutcome)>();
    py.detach(move || {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let done_tx = done_tx.clone();
                let work_rx = &work_rx;
                scope.spawn(move || loop {
                    let next = work_rx.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some(attempt) = next else { return };
                    let outcome = Python::attach(|py| registry.run(py, &attempt));
                    if done_tx.send((attempt.id, outcome)).is_err() {
                        return;
                    }
                });
            }
            let result = (|| -> PyResult<()> {
                let mut in_flight = 0usize;
                let mut progress = Progress::new();
                loop {
                    let mut wake = None;
                    for action in exec.poll(SystemTime::now()) {
                        match action {
                            Action::StartTask(attempt) => {
                                in_flight += 1;
                                work_tx.send(attempt).map_err(|_| {
                                    PyRuntimeError::new_err("local workers stopped")
                                })?;
                            }
                            other => Python::attach(|py| {
                                handle_other(py, exec, hooks, other, &mut wake)
                            })?,
                        }
                    }
                    progress.tick(exec);
                    if exec.phase().is_terminal() {
                        progress.finish(exec);
                        return Ok(());
                    }
                    if in_flight > 0 {
                        let stopped = || PyRuntimeError::new_err("local workers stopped");
                        // Wake up for the next deadline even while tasks run, so timeouts fire.
                        let first = match wake
                            .and_then(|t| t.duration_since(SystemTime::now()).ok())
                        {
                            Some(d) => match done_rx.recv_timeout(d) {
                                Ok(done) => done,
                                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(stopped()),
                            },
                            None => done_rx.recv().map_err(|_| stopped())?,
                        };
                        for (id, outcome) in std::iter::once(first).chain(done_rx.try_iter()) {
                            in_flight -= 1;
                            // An aborted attempt may still report; the engine no longer knows it.
                            let _ = exec.task_finished(id, outcome, SystemTime::now());
                        }
                    } else if !exec.has_pending_work() {
                        match wake {
                            Some(t) => {
                                if let Ok(d) = t.duration_since(SystemTime::now()) {
                                    std::thread::sleep(d);
                                }
                            }
                            None => {
                                return Err(PyRuntimeError::new_err(
                                    "the workflow cannot make progress",
                                ))
                            }
                        }
                    }
                }
            })();
            drop(work_tx);
            result
        })
    })
}

fn result(
    py: Python<'_>,
    exec: &Execution,
    registry: &Registry,
    output_kinds: &[(String, Kind)],
) -> PyResult<Py<PyAny>> {
    if let Some(outputs) = exec.outputs() {
        return Ok(map_to_values(py, outputs, output_kinds)?
            .into_any()
            .unbind());
    }
    let error = exec.error().cloned().unwrap_or_default();
    // The node whose failure ended the run: the first failed task node carrying this error.
    let failed = exec
        .state()
        .nodes
        .iter()
        .find(|n| {
            matches!(n.phase, NodePhase::Failed | NodePhase::TimedOut)
                && n.error.as_ref() == Some(&error)
        })
        .or_else(|| {
            exec.state()
                .nodes
                .iter()
                .find(|n| matches!(n.phase, NodePhase::Failed | NodePhase::TimedOut))
        });
    let (node_id, attempts) = failed
        .map(|n| (n.id.clone(), n.attempts))
        .unwrap_or_default();
    let exception = registry
        .errors
        .lock()
        .ok()
        .and_then(|e| e.get(&node_id).map(|v| v.clone_ref(py)))
        .unwrap_or_else(|| py.None());
    let failure = LocalRunFailure {
        node_id,
        attempt: attempts.saturating_sub(1),
        code: error.code,
        message: error.message,
        exception,
    };
    Ok(Py::new(py, failure)?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LocalRunFailure>()?;
    m.add_function(wrap_pyfunction!(run_local, m)?)
}
