//! Model-based test of propeller's driver: random DAGs registered through admin and run
//! concurrently by one propeller with a scripted plugin (attempts finish after random delays,
//! fail by script, retry), with random parallelism limits (often narrower than the fan-out) and
//! some executions terminated midway. Checked: every execution ends, in the phase a reference
//! interpreter gives; no execution has more attempts running than its limit; no attempt starts
//! twice. The engine's own model test (`rust/engine/tests/model.rs`) covers every node kind in
//! thousands of cases; this one covers the asynchronous driver, its saves and its wake-ups.
//!
//! `ALULA_PROPELLER_MODEL_CASES` sets the number of executions (default 24).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alula_fuzz::SeededRng as Rng;
use alula_idl::flyteidl::core::{
    container_error, workflow_execution::Phase, ContainerError, ErrorDocument, TaskTemplate,
};
use alula_propeller::plugin::{Attempt, AttemptStatus, Plugin, PluginError, Waker};
use async_trait::async_trait;
use prost::Message;
use support::Harness;

struct Case {
    /// Per node: its upstream nodes, and whether each attempt succeeds.
    nodes: Vec<(Vec<usize>, Vec<bool>)>,
    limit: u32,
    /// Terminated after this delay; such a case has a node whose attempt never ends, and no
    /// failures, so only the terminate can end it (ABORTED, never a race with its own end).
    terminate_after: Option<Duration>,
}

fn gen_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let size = rng.range(1, 40) as usize;
    let terminate_after =
        (rng.range(0, 9) == 0).then(|| Duration::from_millis(rng.range(0, 200) as u64));
    let nodes = (0..size)
        .map(|i| {
            let after = if i > 0 && rng.range(0, 3) == 0 {
                vec![rng.range(0, i as i64 - 1) as usize]
            } else {
                vec![]
            };
            let retries = rng.range(0, 2) as usize;
            let script = (0..=retries)
                .map(|_| terminate_after.is_some() || rng.range(0, 7) != 0)
                .collect();
            (after, script)
        })
        .collect();
    Case {
        nodes,
        limit: rng.range(1, 10) as u32,
        terminate_after,
    }
}

/// Succeeded when every node has a successful attempt within its retries; ABORTED when
/// terminated.
fn reference(case: &Case) -> Phase {
    if case.terminate_after.is_some() {
        Phase::Aborted
    } else if case.nodes.iter().all(|(_, script)| script.contains(&true)) {
        Phase::Succeeded
    } else {
        Phase::Failed
    }
}

#[derive(Default)]
struct Shared {
    /// Execution name → its case's scripts by node id.
    scripts: HashMap<String, HashMap<String, Vec<bool>>>,
    limits: HashMap<String, u32>,
    /// Executions whose `n0` never finishes.
    hanging: HashSet<String>,
    /// Execution name → attempts running now.
    running: HashMap<String, HashSet<String>>,
    finished: HashSet<String>,
    started: Vec<String>,
    violations: Vec<String>,
}

/// Finishes each attempt after a random delay, succeeding or failing (recoverably) by script.
#[derive(Clone, Default)]
struct Scripted(Arc<Mutex<Shared>>);

#[async_trait]
impl Plugin for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn can_run(&self, _task: &TaskTemplate) -> bool {
        true
    }

    async fn start(&self, attempt: &Attempt, waker: Waker) -> Result<(), PluginError> {
        let name = attempt.unique_name();
        let exec = attempt.execution.name.clone();
        let ok = {
            let mut s = self.0.lock().expect("lock");
            if s.started.contains(&name) {
                return Err(PluginError::AlreadyStarted(name));
            }
            s.started.push(name.clone());
            let limit = s.limits[&exec];
            let running = s.running.entry(exec.clone()).or_default();
            running.insert(name.clone());
            if running.len() > limit as usize {
                let n = running.len();
                s.violations
                    .push(format!("{exec}: {n} attempts running, limit {limit}"));
            }
            if s.hanging.contains(&exec) && attempt.node_id == "n0" {
                return Ok(()); // runs until aborted
            }
            s.scripts[&exec][&attempt.node_id][attempt.retry_attempt as usize]
        };
        let delay = Duration::from_millis(Rng::new(name.len() as u64 * 7919).range(0, 15) as u64);
        let shared = self.0.clone();
        let prefix = attempt.output_prefix.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if !ok {
                let doc = ErrorDocument {
                    error: Some(ContainerError {
                        code: "Scripted".into(),
                        message: format!("{name} failed by script"),
                        kind: container_error::Kind::Recoverable as i32,
                        ..Default::default()
                    }),
                };
                let _ = std::fs::create_dir_all(&prefix);
                let _ = std::fs::write(prefix.join("error.pb"), doc.encode_to_vec());
            }
            let mut s = shared.lock().expect("lock");
            s.running.entry(exec).or_default().remove(&name);
            s.finished.insert(name);
            drop(s);
            waker.wake();
        });
        Ok(())
    }

    async fn check(&self, attempt: &Attempt, _waker: Waker) -> Result<AttemptStatus, PluginError> {
        let s = self.0.lock().expect("lock");
        let name = attempt.unique_name();
        Ok(if s.finished.contains(&name) {
            AttemptStatus::Exited {
                exit_code: Some(0),
                message: String::new(),
            }
        } else if s.started.contains(&name) {
            AttemptStatus::Running
        } else {
            AttemptStatus::NotStarted
        })
    }

    async fn abort(&self, attempt: &Attempt) -> Result<(), PluginError> {
        let mut s = self.0.lock().expect("lock");
        let name = attempt.unique_name();
        s.running
            .entry(attempt.execution.name.clone())
            .or_default()
            .remove(&name);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_workflows_end_in_the_reference_phase() -> anyhow::Result<()> {
    let cases: u64 = std::env::var("ALULA_PROPELLER_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let h = Harness::new().await?;
    let plugin = Scripted::default();
    let mut launched = Vec::new();
    for seed in 0..cases {
        let case = gen_case(seed);
        let mut nodes = Vec::new();
        let mut scripts = HashMap::new();
        for (i, (after, script)) in case.nodes.iter().enumerate() {
            let retries = script.len() as u32 - 1;
            let task = h
                .task_with_retries(&format!("c{seed}-t{i}"), &["run"], retries)
                .await?;
            nodes.push((task, after.clone()));
            scripts.insert(format!("n{i}"), script.clone());
        }
        let lp = h.dag(&format!("wf{seed}"), nodes).await?;
        let name = format!("case{seed}");
        {
            let mut s = plugin.0.lock().expect("lock");
            s.scripts.insert(name.clone(), scripts);
            s.limits.insert(name.clone(), case.limit);
            if case.terminate_after.is_some() {
                s.hanging.insert(name.clone());
            }
        }
        h.launch(&name, &lp, case.limit as i32).await?;
        launched.push((seed, name, case));
    }

    let running = h.propeller(vec![Arc::new(plugin.clone())], h.config());
    let started = std::time::Instant::now();
    for (_, name, case) in &launched {
        if let Some(after) = case.terminate_after {
            tokio::time::sleep(after.saturating_sub(started.elapsed())).await;
            h.terminate(name).await?;
        }
    }
    let mut failures = Vec::new();
    for (seed, name, case) in &launched {
        let phase = h.wait_terminal(name, Duration::from_secs(60)).await?;
        let want = reference(case);
        if phase != want {
            failures.push(format!(
                "seed {seed}: {phase:?}, the reference says {want:?}"
            ));
        }
    }
    running.stop().await?;
    let s = plugin.0.lock().expect("lock");
    println!(
        "propeller model test: {cases} executions, {} attempts",
        s.started.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(s.violations.is_empty(), "{}", s.violations.join("\n"));
    Ok(())
}
