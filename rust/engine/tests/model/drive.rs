//! The driver under test: runs a case the way propeller does and checks every property.

use super::*;

/// Tasks with a timeout have this one; hanging attempts end by it.
pub(super) const TIMEOUT_SECS: i64 = 60;

/// Polls at most this often in one advance before declaring it stuck: each poll either starts
/// work or leaves nothing pending, so a handful suffices.
pub(super) const MAX_POLLS_PER_ADVANCE: usize = 8;

pub(super) struct Flight {
    name: String,
    step: Step,
    attempt: alula_engine::TaskAttempt,
}

pub(super) fn script_step(
    case: &Case,
    node_execution_id: &str,
    retry: u32,
    element: Option<u32>,
) -> Step {
    let Some(i) = node_index(node_execution_id) else {
        return Step::Ok; // a node inside a branch, subworkflow or dynamic workflow
    };
    match (&case.nodes[i], element) {
        (Kind::Task { script, .. }, None) => script[retry as usize],
        (Kind::Map { .. }, Some(e)) if case.xs[e as usize] < 0 => Step::Fail,
        _ => Step::Ok,
    }
}

/// The index of a top-level node from its node execution id (`None` inside a branch,
/// subworkflow or dynamic workflow).
pub(super) fn node_index(node_execution_id: &str) -> Option<usize> {
    node_execution_id.strip_prefix('n')?.parse().ok()
}

pub(super) fn outcome(
    case: &Case,
    name: &str,
    attempt: &alula_engine::TaskAttempt,
    step: Step,
) -> TaskOutcome {
    match step {
        Step::Fail => {
            TaskOutcome::Failed(user_error(&format!("{} failed", attempt.node_execution_id)))
        }
        Step::Hang => unreachable!("a hanging attempt never reports"),
        Step::Ok if name.starts_with("dyn") => {
            let x = as_int(&attempt.inputs.literals["x"]);
            let Some(Kind::Dynamic { width, .. }) =
                node_index(&attempt.node_execution_id).and_then(|i| case.nodes.get(i))
            else {
                unreachable!("a dynamic task runs for a dynamic node")
            };
            let nodes: Vec<Node> = (0..*width)
                .map(|k| task_node(&format!("d{k}"), "inc", vec![bind("x", constant(int(x)))]))
                .collect();
            let out = if *width > 0 {
                promise("d0", "o0")
            } else {
                constant(int(x))
            };
            TaskOutcome::Dynamic(DynamicJobSpec {
                nodes,
                outputs: vec![bind("o0", out)],
                tasks: vec![task("inc", &["x"], &["o0"])],
                ..Default::default()
            })
        }
        Step::Ok => {
            let get = |k: &str| attempt.inputs.literals.get(k).map_or(0, as_int);
            let v = match name {
                "inc" => get("x") + 1,
                "double" => get("x") * 2,
                _ => get("x") + get("y"),
            };
            ok(&[("o0", int(v))])
        }
    }
}

pub(super) fn run_case(seed: u64) -> Result<(), String> {
    let case = gen_case(seed);
    let closure = build(&case);
    let settings = || ExecutionSettings {
        max_parallelism: case.limit,
        record_events: true,
        ..Default::default()
    };
    let ins = inputs(&[
        ("x", int(case.x)),
        (
            "xs",
            alula_engine::literals::collection(case.xs.iter().map(|&x| int(x)).collect()),
        ),
    ]);
    let mut exec =
        Execution::new(&closure, ins, settings()).map_err(|e| format!("new execution: {e}"))?;
    let mut rng = Rng::new(seed ^ 0xA5A5_A5A5);
    let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut flights: HashMap<AttemptId, Flight> = HashMap::new();
    let mut wake: Option<SystemTime> = None;
    let mut gates: Vec<String> = Vec::new();
    let total_attempts: usize = case
        .nodes
        .iter()
        .map(|k| match k {
            Kind::Task { script, .. } => script.len(),
            Kind::Map { .. } => case.xs.len(),
            Kind::Sub { len, .. } => *len,
            Kind::Dynamic { width, .. } => 1 + width,
            _ => 1,
        })
        .sum();
    let max_steps = 4 * (total_attempts + case.nodes.len()) + 20;
    let mut steps = 0;
    loop {
        steps += 1;
        if steps > max_steps {
            return Err(format!("not over after {max_steps} driver steps"));
        }
        // Advance as propeller does: poll while work is pending.
        let mut polls = 0;
        loop {
            polls += 1;
            if polls > MAX_POLLS_PER_ADVANCE {
                return Err(format!(
                    "advance does not return: work still pending after {polls} polls \
                     ({} attempts in flight, limit {})",
                    flights.len(),
                    case.limit
                ));
            }
            for action in exec.poll(now) {
                match action {
                    Action::StartTask(a) => {
                        let name = a
                            .task
                            .id
                            .as_ref()
                            .map(|i| i.name.clone())
                            .unwrap_or_default();
                        let step = script_step(
                            &case,
                            &a.node_execution_id,
                            a.retry_attempt,
                            a.array_index,
                        );
                        let id = a.id;
                        flights.insert(
                            a.id,
                            Flight {
                                name,
                                step,
                                attempt: *a,
                            },
                        );
                        if flights.len() > case.limit as usize {
                            return Err(format!(
                                "{} attempts in flight, over the limit of {} (starting {})",
                                flights.len(),
                                case.limit,
                                flights[&id].attempt.node_execution_id
                            ));
                        }
                    }
                    Action::AbortTask { attempt, .. } => {
                        flights.remove(&attempt);
                    }
                    Action::WakeAt(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                    // A resumed execution asks again for what it waits on: idempotent.
                    Action::WaitForSignal {
                        node_execution_id, ..
                    } if !gates.contains(&node_execution_id) => gates.push(node_execution_id),
                    Action::WaitForSignal { .. } => {}
                    other => return Err(format!("unexpected action {other:?}")),
                }
            }
            if !exec.has_pending_work() {
                break;
            }
        }
        let _ = exec.take_events();
        if exec.phase().is_terminal() {
            break;
        }
        // Now and then the driver dies once it has acted on everything (as propeller saves
        // before it acts): a new one resumes from the stored state.
        if rng.chance(5) {
            exec = restart(&exec, &closure, settings(), now)?;
        }
        if case.abort_at == Some(steps) {
            for action in exec.abort("model abort", now) {
                if let Action::AbortTask { attempt, .. } = action {
                    flights.remove(&attempt);
                }
            }
            if exec.phase() != WorkflowPhase::Aborted {
                return Err(format!("abort ended in {:?}", exec.phase()));
            }
            if !flights.is_empty() {
                return Err(format!("{} attempts not aborted", flights.len()));
            }
            return Ok(());
        }
        // Finish one attempt that can finish, chosen at random; else move the clock.
        let finishing: Vec<AttemptId> = flights
            .iter()
            .filter(|(_, f)| f.step != Step::Hang)
            .map(|(a, _)| *a)
            .collect();
        if !gates.is_empty() && (finishing.is_empty() || rng.chance(20)) {
            let gate = gates.swap_remove((rng.next_u64() % gates.len() as u64) as usize);
            let yes = alula_engine::literals::primitive(primitive::Value::Boolean(true));
            exec.signal(&gate, yes, now)
                .map_err(|e| format!("signal: {e}"))?;
        } else if !finishing.is_empty() {
            let mut sorted = finishing;
            sorted.sort_by_key(|a| format!("{a:?}"));
            let a = *rng.pick(&sorted);
            let flight = flights.remove(&a).expect("in flight");
            // Time moves a millisecond per finished attempt (a few seconds over the largest
            // case): only hanging attempts reach their timeout.
            now += Duration::from_millis(1);
            exec.task_finished(
                a,
                outcome(&case, &flight.name, &flight.attempt, flight.step),
                now,
            )
            .map_err(|e| format!("task_finished: {e}"))?;
        } else if let Some(t) = wake.take() {
            now = now.max(t);
        } else {
            return Err(format!(
                "stuck in {:?}: nothing in flight, nothing to wake for",
                exec.phase()
            ));
        }
    }
    match (reference(&case), exec.phase()) {
        (Expected::Succeeded(want), WorkflowPhase::Succeeded) => {
            let got: BTreeMap<String, Value> = exec
                .outputs()
                .map(|o| {
                    o.literals
                        .iter()
                        .map(|(k, v)| (k.clone(), value_of(v)))
                        .collect()
                })
                .unwrap_or_default();
            if got != want {
                return Err(format!("outputs {got:?}, the reference says {want:?}"));
            }
        }
        (Expected::Failed { nodes, timeout }, WorkflowPhase::Failed) => {
            let message = exec.error().map(|e| e.message.clone()).unwrap_or_default();
            let timed_out = timeout && message.contains("exceeded its timeout");
            if !timed_out && !nodes.iter().any(|n| message.contains(n.as_str())) {
                return Err(format!(
                    "failed with {message:?}, expected a failure of one of {nodes:?}"
                ));
            }
        }
        (want, got) => return Err(format!("ended {got:?}, the reference says {want:?}")),
    }
    Ok(())
}

/// What a propeller taking over does: the state in its stored form, read back and resumed. The
/// stored form must give back exactly the state (stored again, the same bytes).
fn restart(
    exec: &Execution,
    closure: &CompiledWorkflowClosure,
    settings: ExecutionSettings,
    now: SystemTime,
) -> Result<Execution, String> {
    let stored = alula_engine::state_codec::encode(exec.state()).map_err(|e| e.to_string())?;
    let state = alula_engine::state_codec::decode(&stored).map_err(|e| e.to_string())?;
    if alula_engine::state_codec::encode(&state).map_err(|e| e.to_string())? != stored {
        return Err("the stored state reads back different".into());
    }
    Execution::resume(closure, state, settings, now).map_err(|e| format!("resume: {e}"))
}
