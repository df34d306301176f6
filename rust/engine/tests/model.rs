//! Model-based test of the engine: random workflows driven the way propeller drives them, checked
//! against a tiny reference interpreter.
//!
//! Each case is a DAG of 1–300 nodes (tasks with scripted failures, retries and timeouts, branches,
//! subworkflows, maps with min-success ratios, dynamic tasks, sleep and approve gates), a parallelism limit from 1 to 50
//! (fan-outs are often wider), attempts finishing in random order, and sometimes an abort at a
//! random step. The properties:
//! - every advance returns: after `poll`, `has_pending_work` turns false within a few polls (a
//!   driver that loops while work is pending never spins);
//! - the execution ends within a bounded number of driver steps, and whenever it is not over,
//!   something can happen (an attempt is in flight or a wake-up is due);
//! - no more attempts run at once than the limit;
//! - the outcome and outputs equal the reference interpreter's;
//! - an abort always ends in ABORTED with every running attempt aborted.
//!
//! `ALULA_MODEL_CASES` sets the number of cases (default 2,000); `ALULA_MODEL_SEED` replays one.
//! A failing case prints its seed.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use alula_engine::{Action, AttemptId, Execution, ExecutionSettings, TaskOutcome, WorkflowPhase};
use alula_fuzz::SeededRng as Rng;
use alula_idl::flyteidl::core::{
    array_node, boolean_expression, comparison_expression, gate_node, if_else_block, literal_type,
    node, operand, primitive, workflow_node, ApproveCondition, ArrayNode, BooleanExpression,
    BranchNode, ComparisonExpression, CompiledWorkflowClosure, DynamicJobSpec, GateNode, IfBlock,
    IfElseBlock, Literal, LiteralType, Node, Operand, ResourceType, Scalar, SleepCondition,
    TaskTemplate, TypedInterface, Variable, VariableMap, WorkflowNode, WorkflowTemplate,
};
use support::*;

/// Where a node's int input comes from.
#[derive(Clone, Copy, Debug)]
enum Src {
    Input,
    Node(usize),
    Const(i64),
}

/// What one attempt of a scripted task does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Ok,
    Fail,
    /// Never finishes: ends by the task's timeout.
    Hang,
}

#[derive(Clone, Debug)]
enum Kind {
    /// `add(x, y)` with a script of attempts and `retries` retries.
    Task {
        x: Src,
        y: Src,
        retries: u32,
        script: Vec<Step>,
        timeout: bool,
    },
    /// `if x > 0: add(x, c) else: inc(x)`.
    Branch { x: Src, c: i64 },
    /// A subworkflow: a chain of `len` incs.
    Sub { x: Src, len: usize },
    /// `map(double)` over the workflow's `xs`; negative elements fail.
    Map {
        ratio: Option<f32>,
        parallelism: Option<u32>,
    },
    /// A sleep gate (no outputs).
    Sleep { secs: i64 },
    /// An approve gate, approved at a random later step (no outputs).
    Approve,
    /// A dynamic task that returns `width` incs of `x` and yields the first one's output (or
    /// `x` when it returns no nodes).
    Dynamic { x: Src, width: usize },
}

#[derive(Clone, Debug)]
struct Case {
    nodes: Vec<Kind>,
    /// Extra ordering edges (upstream node indices) besides data dependencies.
    after: Vec<Vec<usize>>,
    x: i64,
    xs: Vec<i64>,
    limit: u32,
    abort_at: Option<usize>,
}

fn gen_src(rng: &mut Rng, i: usize, nodes: &[Kind]) -> Src {
    // Mostly the workflow input, so fan-outs are wide; otherwise an earlier int-valued node.
    let earlier: Vec<usize> = (0..i)
        .filter(|&j| {
            matches!(
                nodes[j],
                Kind::Task { .. } | Kind::Branch { .. } | Kind::Sub { .. } | Kind::Dynamic { .. }
            )
        })
        .collect();
    match rng.range(0, 9) {
        0..=4 => Src::Input,
        5..=7 if !earlier.is_empty() => Src::Node(*rng.pick(&earlier)),
        _ => Src::Const(rng.range(-5, 5)),
    }
}

fn gen_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let size = match rng.range(0, 9) {
        0 => rng.range(100, 300),
        1..=3 => rng.range(20, 60),
        _ => rng.range(1, 12),
    } as usize;
    let mut nodes = Vec::with_capacity(size);
    let mut after = Vec::with_capacity(size);
    for i in 0..size {
        let kind = match rng.range(0, 21) {
            0..=11 => {
                let retries = rng.range(0, 2) as u32;
                let timeout = rng.chance(15);
                let script = (0..=retries)
                    .map(|_| match rng.range(0, 9) {
                        0 => Step::Fail,
                        1 if timeout => Step::Hang,
                        _ => Step::Ok,
                    })
                    .collect();
                Kind::Task {
                    x: gen_src(&mut rng, i, &nodes),
                    y: gen_src(&mut rng, i, &nodes),
                    retries,
                    script,
                    timeout,
                }
            }
            12..=13 => Kind::Branch {
                x: gen_src(&mut rng, i, &nodes),
                c: rng.range(-3, 3),
            },
            14..=15 => Kind::Sub {
                x: gen_src(&mut rng, i, &nodes),
                len: rng.range(1, 3) as usize,
            },
            16..=17 => Kind::Map {
                ratio: match rng.range(0, 2) {
                    0 => None,
                    _ => Some(*rng.pick(&[0.5f32, 0.7, 0.9, 1.0])),
                },
                parallelism: match rng.range(0, 2) {
                    0 => None,
                    _ => Some(rng.range(0, 5) as u32),
                },
            },
            18 => Kind::Sleep {
                secs: rng.range(1, 60),
            },
            19 => Kind::Approve,
            _ => Kind::Dynamic {
                x: gen_src(&mut rng, i, &nodes),
                width: rng.range(0, 6) as usize,
            },
        };
        let deps = if i > 0 && rng.chance(20) {
            vec![rng.range(0, i as i64 - 1) as usize]
        } else {
            vec![]
        };
        nodes.push(kind);
        after.push(deps);
    }
    let xs = (0..rng.range(0, 40))
        .map(|_| if rng.chance(3) { -1 } else { rng.range(0, 9) })
        .collect();
    Case {
        nodes,
        after,
        x: rng.range(-3, 5),
        xs,
        limit: rng.range(1, 50) as u32,
        abort_at: rng.chance(10).then(|| rng.range(0, 40) as usize),
    }
}

// ---- building the workflow --------------------------------------------------------------------

fn id(i: usize) -> String {
    format!("n{i}")
}

fn list_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::CollectionType(Box::new(int_type()))),
        ..Default::default()
    }
}

fn binding(var: &str, src: Src) -> alula_idl::flyteidl::core::Binding {
    match src {
        Src::Input => bind(var, promise("start-node", "x")),
        Src::Node(j) => bind(var, promise(&id(j), "o0")),
        Src::Const(c) => bind(var, constant(int(c))),
    }
}

fn scalar(v: i64) -> Scalar {
    match int(v).value {
        Some(alula_idl::flyteidl::core::literal::Value::Scalar(s)) => *s,
        _ => unreachable!("an int is a scalar"),
    }
}

fn build(case: &Case) -> CompiledWorkflowClosure {
    let mut nodes = Vec::new();
    let mut outputs = Vec::new();
    let mut out_vars = BTreeMap::new();
    let mut tasks: Vec<TaskTemplate> = vec![
        task("inc", &["x"], &["o0"]),
        task("double", &["x"], &["o0"]),
    ];
    let mut subs: Vec<usize> = Vec::new();
    for (i, kind) in case.nodes.iter().enumerate() {
        let name = id(i);
        let mut n = match kind {
            Kind::Task {
                x,
                y,
                retries,
                timeout,
                ..
            } => {
                // One task per node, so retries and timeouts are per node.
                let mut t = with_retries(task(&format!("add{i}"), &["x", "y"], &["o0"]), *retries);
                if *timeout {
                    t = with_timeout(t, TIMEOUT_SECS);
                }
                tasks.push(t);
                task_node(
                    &name,
                    &format!("add{i}"),
                    vec![binding("x", *x), binding("y", *y)],
                )
            }
            Kind::Branch { x, c } => {
                tasks.push(task(&format!("add{i}"), &["x", "y"], &["o0"]));
                let then = task_node(
                    &format!("{name}-then"),
                    &format!("add{i}"),
                    vec![binding("x", *x), bind("y", constant(int(*c)))],
                );
                // A branch's cases bind to the enclosing workflow's nodes, as the condition does.
                let other = task_node(&format!("{name}-else"), "inc", vec![binding("x", *x)]);
                let cond = BooleanExpression {
                    expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
                        operator: comparison_expression::Operator::Gt as i32,
                        left_value: Some(Operand {
                            val: Some(operand::Val::Var("x".into())),
                        }),
                        right_value: Some(Operand {
                            val: Some(operand::Val::Scalar(scalar(0))),
                        }),
                    })),
                };
                Node {
                    id: name.clone(),
                    inputs: vec![binding("x", *x)],
                    target: Some(node::Target::BranchNode(Box::new(BranchNode {
                        if_else: Some(Box::new(IfElseBlock {
                            case: Some(Box::new(IfBlock {
                                condition: Some(cond),
                                then_node: Some(Box::new(then)),
                            })),
                            other: vec![],
                            default: Some(if_else_block::Default::ElseNode(Box::new(other))),
                        })),
                    }))),
                    ..Default::default()
                }
            }
            Kind::Sub { x, len } => {
                if !subs.contains(len) {
                    subs.push(*len);
                }
                Node {
                    id: name.clone(),
                    inputs: vec![binding("x", *x)],
                    target: Some(node::Target::WorkflowNode(WorkflowNode {
                        reference: Some(workflow_node::Reference::SubWorkflowRef(ident(
                            ResourceType::Workflow,
                            &format!("chain{len}"),
                        ))),
                    })),
                    ..Default::default()
                }
            }
            Kind::Map { ratio, parallelism } => Node {
                id: name.clone(),
                inputs: vec![bind("x", promise("start-node", "xs"))],
                target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
                    node: Some(Box::new(task_node(
                        &name,
                        "double",
                        vec![bind("x", promise("start-node", "xs"))],
                    ))),
                    parallelism_option: parallelism.map(array_node::ParallelismOption::Parallelism),
                    success_criteria: ratio.map(array_node::SuccessCriteria::MinSuccessRatio),
                    ..Default::default()
                }))),
                ..Default::default()
            },
            Kind::Approve => Node {
                id: name.clone(),
                target: Some(node::Target::GateNode(GateNode {
                    condition: Some(gate_node::Condition::Approve(ApproveCondition {
                        signal_id: format!("approve-{i}"),
                    })),
                })),
                ..Default::default()
            },
            Kind::Dynamic { x, .. } => {
                tasks.push(task(&format!("dyn{i}"), &["x"], &["o0"]));
                task_node(&name, &format!("dyn{i}"), vec![binding("x", *x)])
            }
            Kind::Sleep { secs } => Node {
                id: name.clone(),
                target: Some(node::Target::GateNode(GateNode {
                    condition: Some(gate_node::Condition::Sleep(SleepCondition {
                        duration: Some(alula_idl::wkt::Duration {
                            seconds: *secs,
                            nanos: 0,
                        }),
                    })),
                })),
                ..Default::default()
            },
        };
        n.upstream_node_ids = case.after[i].iter().map(|&j| id(j)).collect();
        let out_type = match kind {
            Kind::Map { .. } => Some(list_type()),
            Kind::Sleep { .. } | Kind::Approve => None,
            _ => Some(int_type()),
        };
        if let Some(t) = out_type {
            let var = format!("o{i}");
            outputs.push(bind(&var, promise(&name, "o0")));
            out_vars.insert(
                var,
                Variable {
                    r#type: Some(t),
                    ..Default::default()
                },
            );
        }
        nodes.push(n);
    }
    let mut ins = vars(&["x"]);
    ins.variables.insert(
        "xs".into(),
        Variable {
            r#type: Some(list_type()),
            ..Default::default()
        },
    );
    let wf = WorkflowTemplate {
        id: Some(ident(ResourceType::Workflow, "model")),
        interface: Some(TypedInterface {
            inputs: Some(ins),
            outputs: Some(VariableMap {
                variables: out_vars.into_iter().collect(),
            }),
        }),
        nodes,
        outputs,
        ..Default::default()
    };
    let subs = subs
        .into_iter()
        .map(|len| {
            let nodes = (0..len)
                .map(|k| {
                    let from = if k == 0 {
                        promise("start-node", "x")
                    } else {
                        promise(&format!("s{}", k - 1), "o0")
                    };
                    task_node(&format!("s{k}"), "inc", vec![bind("x", from)])
                })
                .collect();
            workflow(
                &format!("chain{len}"),
                &["x"],
                nodes,
                vec![bind("o0", promise(&format!("s{}", len - 1), "o0"))],
                &["o0"],
            )
        })
        .collect();
    closure(wf, subs, tasks)
}

// ---- the reference interpreter ----------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Expected {
    Succeeded(BTreeMap<String, Value>),
    /// Failed, with the nodes whose failure may be the one reported, and whether one of them
    /// may have failed by its timeout.
    Failed {
        nodes: Vec<String>,
        timeout: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    List(Vec<Option<i64>>),
}

fn reference(case: &Case) -> Expected {
    let mut values: Vec<Option<i64>> = vec![None; case.nodes.len()];
    let mut outputs = BTreeMap::new();
    let mut failed = Vec::new();
    let mut timeout = false;
    // `None`: the source never ran (it or one of its own sources failed).
    let get = |values: &[Option<i64>], src: Src| match src {
        Src::Input => Some(case.x),
        Src::Node(j) => values[j],
        Src::Const(c) => Some(c),
    };
    let mut ran = vec![false; case.nodes.len()];
    for (i, kind) in case.nodes.iter().enumerate() {
        if case.after[i].iter().any(|&j| !ran[j]) {
            continue;
        }
        let value = match kind {
            Kind::Task { x, y, script, .. } => {
                let (Some(x), Some(y)) = (get(&values, *x), get(&values, *y)) else {
                    continue;
                };
                if script.contains(&Step::Ok) {
                    Value::Int(x + y)
                } else {
                    timeout |= script.contains(&Step::Hang);
                    failed.push(id(i));
                    continue;
                }
            }
            Kind::Branch { x, c } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(if x > 0 { x + c } else { x + 1 })
            }
            Kind::Sub { x, len } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(x + *len as i64)
            }
            Kind::Map { ratio, .. } => {
                let size = case.xs.len();
                let min = match ratio {
                    Some(r) => ((f64::from(*r) * size as f64).ceil() as usize).min(size),
                    None => size,
                };
                let ok = case.xs.iter().filter(|&&x| x >= 0).count();
                if ok < min {
                    failed.push(id(i));
                    continue;
                }
                Value::List(case.xs.iter().map(|&x| (x >= 0).then_some(x * 2)).collect())
            }
            Kind::Dynamic { x, width } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(x + i64::from(*width > 0))
            }
            Kind::Sleep { .. } | Kind::Approve => {
                ran[i] = true;
                continue;
            }
        };
        ran[i] = true;
        if let Value::Int(v) = value {
            values[i] = Some(v);
        }
        outputs.insert(format!("o{i}"), value);
    }
    // A failed node's dependents never run, and the first failure fails the workflow: any
    // failed node that was reachable may be the one reported.
    if failed.is_empty() {
        Expected::Succeeded(outputs)
    } else {
        Expected::Failed {
            nodes: failed,
            timeout,
        }
    }
}

fn value_of(l: &Literal) -> Value {
    match alula_engine::literals::as_collection(l) {
        Some(items) => Value::List(
            items
                .iter()
                .map(|i| (!alula_engine::literals::is_none(i)).then(|| as_int(i)))
                .collect(),
        ),
        None => Value::Int(as_int(l)),
    }
}

// ---- the driver under test --------------------------------------------------------------------

/// Tasks with a timeout have this one; hanging attempts end by it.
const TIMEOUT_SECS: i64 = 60;

/// Polls at most this often in one advance before declaring it stuck: each poll either starts
/// work or leaves nothing pending, so a handful suffices.
const MAX_POLLS_PER_ADVANCE: usize = 8;

struct Flight {
    name: String,
    step: Step,
    attempt: alula_engine::TaskAttempt,
}

fn script_step(case: &Case, node_execution_id: &str, retry: u32, element: Option<u32>) -> Step {
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
fn node_index(node_execution_id: &str) -> Option<usize> {
    node_execution_id.strip_prefix('n')?.parse().ok()
}

fn outcome(
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

fn run_case(seed: u64) -> Result<(), String> {
    let case = gen_case(seed);
    let closure = build(&case);
    let settings = ExecutionSettings {
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
        Execution::new(&closure, ins, settings).map_err(|e| format!("new execution: {e}"))?;
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
                    Action::WaitForSignal {
                        node_execution_id, ..
                    } => gates.push(node_execution_id),
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

fn cases() -> u64 {
    std::env::var("ALULA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[test]
fn random_workflows_behave_like_the_reference() {
    if let Some(seed) = std::env::var("ALULA_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        if let Err(e) = run_case(seed) {
            panic!("seed {seed}: {e}\n{:#?}", gen_case(seed));
        }
        return;
    }
    let n = cases();
    let mut failures = Vec::new();
    for seed in 0..n {
        if let Err(e) = run_case(seed) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    println!("model test: {n} generated workflows");
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed (replay one with ALULA_MODEL_SEED=N):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The hang found by trying Alula as a user: 26 tasks ready at once under a limit of 25 left
/// work "pending" with no free slot, and propeller's advance polled forever.
#[test]
fn a_fan_out_wider_than_the_limit_leaves_no_pending_work() {
    for (width, limit) in [(26usize, 25u32), (20, 5), (3, 1)] {
        let nodes = (0..width)
            .map(|i| {
                task_node(
                    &format!("n{i}"),
                    "inc",
                    vec![bind("x", promise("start-node", "x"))],
                )
            })
            .collect();
        let wf = workflow("wide", &["x"], nodes, vec![], &[]);
        let c = closure(wf, vec![], vec![task("inc", &["x"], &["o0"])]);
        let mut exec = Execution::new(
            &c,
            inputs(&[("x", int(1))]),
            ExecutionSettings {
                max_parallelism: limit,
                ..Default::default()
            },
        )
        .expect("closure");
        let started = exec
            .poll(SystemTime::now())
            .iter()
            .filter(|a| matches!(a, Action::StartTask(_)))
            .count();
        assert_eq!(started, limit as usize);
        assert!(
            !exec.has_pending_work(),
            "{width} tasks under a limit of {limit}: nothing can start until one finishes"
        );
    }
}
