//! Builders for small workflows and a scriptable executor with a manual clock.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alula_engine::driver::Executor;
use alula_engine::literals;
use alula_engine::{AttemptId, SignalKind, TaskAttempt, TaskOutcome};
use alula_idl::flyteidl::core::{
    binding_data, execution_error::ErrorKind, literal_type, node, primitive, task_node, ArrayNode,
    Binding, BindingData, CatalogCacheStatus, CompiledTask, CompiledWorkflow,
    CompiledWorkflowClosure, ExecutionError, Identifier, Literal, LiteralMap, LiteralType, Node,
    NodeMetadata, OutputReference, ResourceType, RetryStrategy, SimpleType, TaskMetadata, TaskNode,
    TaskTemplate, TypedInterface, Variable, VariableMap, WorkflowTemplate,
};

pub fn int(v: i64) -> Literal {
    literals::primitive(primitive::Value::Integer(v))
}

pub fn as_int(l: &Literal) -> i64 {
    match literals::as_primitive(l) {
        Some(primitive::Value::Integer(v)) => *v,
        other => panic!("not an int: {other:?}"),
    }
}

pub fn int_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
        ..Default::default()
    }
}

pub fn vars(names: &[&str]) -> VariableMap {
    VariableMap {
        variables: names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Variable {
                        r#type: Some(int_type()),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

pub fn ident(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
        version: "v1".into(),
        ..Default::default()
    }
}

/// A task with int inputs and outputs.
pub fn task(name: &str, inputs: &[&str], outputs: &[&str]) -> TaskTemplate {
    TaskTemplate {
        id: Some(ident(ResourceType::Task, name)),
        r#type: "python-task".into(),
        metadata: Some(TaskMetadata::default()),
        interface: Some(TypedInterface {
            inputs: Some(vars(inputs)),
            outputs: Some(vars(outputs)),
        }),
        ..Default::default()
    }
}

pub fn with_retries(mut t: TaskTemplate, retries: u32) -> TaskTemplate {
    t.metadata.get_or_insert_with(Default::default).retries = Some(RetryStrategy { retries });
    t
}

pub fn with_timeout(mut t: TaskTemplate, secs: i64) -> TaskTemplate {
    t.metadata.get_or_insert_with(Default::default).timeout = Some(alula_idl::wkt::Duration {
        seconds: secs,
        nanos: 0,
    });
    t
}

pub fn promise(node_id: &str, var: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node_id.into(),
            var: var.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn constant(l: Literal) -> BindingData {
    let Some(alula_idl::flyteidl::core::literal::Value::Scalar(s)) = l.value else {
        panic!("not a scalar")
    };
    BindingData {
        value: Some(binding_data::Value::Scalar(*s)),
        ..Default::default()
    }
}

pub fn bind(var: &str, data: BindingData) -> Binding {
    Binding {
        var: var.into(),
        binding: Some(data),
    }
}

pub fn task_node(id: &str, task: &str, inputs: Vec<Binding>) -> Node {
    Node {
        id: id.into(),
        metadata: Some(NodeMetadata {
            name: task.into(),
            ..Default::default()
        }),
        inputs,
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(ident(
                ResourceType::Task,
                task,
            ))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn workflow(
    name: &str,
    inputs: &[&str],
    nodes: Vec<Node>,
    outputs: Vec<Binding>,
    out_names: &[&str],
) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(ident(ResourceType::Workflow, name)),
        interface: Some(TypedInterface {
            inputs: Some(vars(inputs)),
            outputs: Some(vars(out_names)),
        }),
        nodes,
        outputs,
        ..Default::default()
    }
}

pub fn closure(
    primary: WorkflowTemplate,
    subs: Vec<WorkflowTemplate>,
    tasks: Vec<TaskTemplate>,
) -> CompiledWorkflowClosure {
    CompiledWorkflowClosure {
        primary: Some(CompiledWorkflow {
            template: Some(primary),
            connections: None,
        }),
        sub_workflows: subs
            .into_iter()
            .map(|t| CompiledWorkflow {
                template: Some(t),
                connections: None,
            })
            .collect(),
        tasks: tasks
            .into_iter()
            .map(|t| CompiledTask { template: Some(t) })
            .collect(),
        launch_plans: Vec::new(),
    }
}

/// Workflow `map(xs) -> o0`: node `n0` maps `task` (`x -> o0`) over `xs`, with `array`'s
/// settings (parallelism, success criteria; its inner node is filled in here).
pub fn map_closure(task: TaskTemplate, array: ArrayNode) -> CompiledWorkflowClosure {
    let name = task.id.as_ref().map(|i| i.name.clone()).unwrap_or_default();
    let map = Node {
        id: "n0".into(),
        inputs: vec![bind("x", promise("start-node", "xs"))],
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node(
                "n0",
                &name,
                vec![bind("x", promise("start-node", "xs"))],
            ))),
            ..array
        }))),
        ..Default::default()
    };
    let wf = workflow(
        "map",
        &["xs"],
        vec![map],
        vec![bind("o0", promise("n0", "o0"))],
        &["o0"],
    );
    closure(wf, vec![], vec![task])
}

pub fn inputs(pairs: &[(&str, Literal)]) -> LiteralMap {
    LiteralMap {
        literals: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn user_error(msg: &str) -> ExecutionError {
    ExecutionError {
        code: "USER:Boom".into(),
        message: msg.into(),
        kind: ErrorKind::User as i32,
        ..Default::default()
    }
}

pub fn system_error(msg: &str) -> ExecutionError {
    ExecutionError {
        code: "SYSTEM:Lost".into(),
        message: msg.into(),
        kind: ErrorKind::System as i32,
        ..Default::default()
    }
}

pub fn ok(pairs: &[(&str, Literal)]) -> TaskOutcome {
    TaskOutcome::Succeeded {
        outputs: inputs(pairs),
        cache_status: CatalogCacheStatus::CacheDisabled,
    }
}

type Body = Box<dyn FnMut(&TaskAttempt) -> Option<TaskOutcome>>;

/// Runs tasks by name with scripted bodies. A body returning `None` never finishes (until
/// aborted). In `deferred` mode outcomes are delivered one at a time through `wait`, so several
/// attempts are in flight at once.
pub struct Fake {
    pub bodies: HashMap<String, Body>,
    pub deferred: bool,
    queue: VecDeque<(AttemptId, TaskOutcome)>,
    pub clock: SystemTime,
    pub started: Vec<(String, String, u32, Option<u32>)>,
    pub aborted: Vec<AttemptId>,
    pub in_flight: usize,
    pub max_in_flight: usize,
    pub signals: HashMap<String, Literal>,
    pub children: Vec<(String, LiteralMap)>,
}

impl Fake {
    pub fn new() -> Self {
        Fake {
            bodies: HashMap::new(),
            deferred: false,
            queue: VecDeque::new(),
            clock: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            started: Vec::new(),
            aborted: Vec::new(),
            in_flight: 0,
            max_in_flight: 0,
            signals: HashMap::new(),
            children: Vec::new(),
        }
    }

    pub fn on(
        mut self,
        task: &str,
        body: impl FnMut(&TaskAttempt) -> Option<TaskOutcome> + 'static,
    ) -> Self {
        self.bodies.insert(task.to_string(), Box::new(body));
        self
    }

    /// `add`: o0 = x + y (y defaults to 0); `inc`: o0 = x + 1.
    pub fn arithmetic() -> Self {
        Fake::new()
            .on("add", |a| {
                let y = a.inputs.literals.get("y").map_or(0, as_int);
                Some(ok(&[("o0", int(as_int(&a.inputs.literals["x"]) + y))]))
            })
            .on("inc", |a| {
                Some(ok(&[("o0", int(as_int(&a.inputs.literals["x"]) + 1))]))
            })
            .on("square", |a| {
                let x = as_int(&a.inputs.literals["x"]);
                Some(ok(&[("o0", int(x * x))]))
            })
    }
}

impl Executor for Fake {
    fn start(&mut self, attempt: TaskAttempt) -> Option<TaskOutcome> {
        let name = attempt
            .task
            .id
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        self.started.push((
            name.clone(),
            attempt.node_execution_id.clone(),
            attempt.retry_attempt,
            attempt.array_index,
        ));
        let body = self
            .bodies
            .get_mut(&name)
            .unwrap_or_else(|| panic!("no body for task {name}"));
        let outcome = body(&attempt);
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        match outcome {
            Some(o) if !self.deferred => {
                self.in_flight -= 1;
                Some(o)
            }
            Some(o) => {
                self.queue.push_back((attempt.id, o));
                None
            }
            None => None,
        }
    }

    fn wait(&mut self) -> Option<(AttemptId, TaskOutcome)> {
        let next = self.queue.pop_front();
        if next.is_some() {
            self.in_flight -= 1;
        }
        next
    }

    fn abort(&mut self, attempt: AttemptId) {
        self.aborted.push(attempt);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.queue.retain(|(a, _)| *a != attempt);
    }

    fn run_child(
        &mut self,
        launch_plan: &Identifier,
        inputs: &LiteralMap,
    ) -> Result<LiteralMap, Box<ExecutionError>> {
        self.children
            .push((launch_plan.name.clone(), inputs.clone()));
        let x = as_int(&inputs.literals["x"]);
        Ok(self::inputs(&[("o0", int(x * 10))]))
    }

    fn signal(&mut self, signal_id: &str, _kind: &SignalKind) -> Option<Literal> {
        self.signals.get(signal_id).cloned()
    }

    fn now(&self) -> SystemTime {
        self.clock
    }

    fn sleep_until(&mut self, t: SystemTime) {
        self.clock = self.clock.max(t);
    }
}
