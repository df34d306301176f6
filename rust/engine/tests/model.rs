//! Model-based test of the engine: random workflows driven the way propeller drives them, checked
//! against a tiny reference interpreter.
//!
//! Each case is a DAG of 1–300 nodes (tasks with scripted failures, retries and timeouts, branches,
//! subworkflows, maps with min-success ratios, dynamic tasks, sleep and approve gates), a parallelism limit from 1 to 50
//! (fan-outs are often wider), attempts finishing in random order, sometimes an abort at a
//! random step, and restarts: at random steps the driver dies and a new one resumes from the
//! stored state (`state_codec`), as a propeller taking over does. The properties:
//! - every advance returns: after `poll`, `has_pending_work` turns false within a few polls (a
//!   driver that loops while work is pending never spins);
//! - the execution ends within a bounded number of driver steps, and whenever it is not over,
//!   something can happen (an attempt is in flight or a wake-up is due);
//! - no more attempts run at once than the limit;
//! - the outcome and outputs equal the reference interpreter's;
//! - an abort always ends in ABORTED with every running attempt aborted;
//! - the stored state reads back to the same bytes, and none of the above changes with
//!   restarts (they found chosen branch cases lost and stale signal waits after a resume).
//!
//! `ALULA_MODEL_CASES` sets the number of cases (default 2,000); `ALULA_MODEL_SEED` replays one.
//! A failing case prints its seed.

mod support;

#[path = "model/build.rs"]
mod build;
#[path = "model/drive.rs"]
mod drive;
#[path = "model/reference.rs"]
mod reference;

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
use build::*;
use drive::*;
use reference::*;
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
