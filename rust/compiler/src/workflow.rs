//! `compile_workflow`: the order of Flyte's checks, and the compiled output.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use alula_core::ids::{display_id, EntityKey};
use alula_core::types::display_type;
use alula_idl::flyteidl::core::{
    binding_data, if_else_block, node, Binding, BindingData, CompiledTask, CompiledWorkflow,
    CompiledWorkflowClosure, LiteralType, Node, TypedInterface, VariableMap, WorkflowTemplate,
};

use crate::errors::{CompileError, CompileErrors, ErrorCode};
use crate::graph::{EdgeKind, Graph};
use crate::launch_plan::LaunchPlanInterface;
use crate::names::{is_dns1123_label, END_NODE_ID, START_NODE_ID};
use crate::task::validate_interface;

/// Variables by name, sorted so that checks and messages come out in a stable order.
pub(crate) type Vars = BTreeMap<String, LiteralType>;

/// A node's interface as its bindings and its downstream nodes see it.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeInterface {
    pub inputs: Vars,
    pub outputs: Vars,
}

pub(crate) fn vars_of(map: Option<&VariableMap>) -> Vars {
    map.map(|m| {
        m.variables
            .iter()
            .filter_map(|(name, v)| Some((name.clone(), v.r#type.clone()?)))
            .collect()
    })
    .unwrap_or_default()
}

/// `[a: int, b: str]`, for messages that list what was available.
pub(crate) fn describe_vars(vars: &Vars) -> String {
    let parts: Vec<String> = vars
        .iter()
        .map(|(n, t)| format!("{n}: {}", display_type(t)))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The entities a workflow may refer to, by id.
pub(crate) struct Catalog<'a> {
    pub tasks: HashMap<EntityKey, &'a CompiledTask>,
    pub launch_plans: HashMap<EntityKey, &'a LaunchPlanInterface>,
    pub subworkflows: HashMap<EntityKey, &'a WorkflowTemplate>,
}

/// Compiles `primary` and every subworkflow against the supplied tasks and launch plans.
///
/// The closure lists the primary workflow, every subworkflow (sorted by id) and every supplied
/// task once (sorted by id); `launch_plans` is left empty, as Flyte's compiler leaves it.
pub fn compile_workflow(
    primary: &WorkflowTemplate,
    subworkflows: &[WorkflowTemplate],
    tasks: &[CompiledTask],
    launch_plans: &[LaunchPlanInterface],
) -> Result<CompiledWorkflowClosure, CompileErrors> {
    let mut errors = Vec::new();
    let mut catalog = Catalog {
        tasks: HashMap::new(),
        launch_plans: HashMap::new(),
        subworkflows: HashMap::new(),
    };
    for (i, task) in tasks.iter().enumerate() {
        match task.template.as_ref().and_then(|t| t.id.as_ref()) {
            Some(id) => {
                catalog.tasks.entry(EntityKey::from(id)).or_insert(task);
            }
            None => errors.push(CompileError::new(
                ErrorCode::ValueRequired,
                format!("tasks[{i}]"),
                "a supplied task has no template id",
            )),
        }
    }
    for lp in launch_plans {
        catalog
            .launch_plans
            .entry(EntityKey::from(&lp.id))
            .or_insert(lp);
    }
    for (i, sub) in subworkflows.iter().enumerate() {
        let Some(id) = &sub.id else {
            errors.push(CompileError::new(
                ErrorCode::ValueRequired,
                format!("subworkflows[{i}]"),
                "a supplied subworkflow has no id",
            ));
            continue;
        };
        if catalog
            .subworkflows
            .insert(EntityKey::from(id), sub)
            .is_some()
        {
            errors.push(CompileError::new(
                ErrorCode::DuplicateId,
                id.name.clone(),
                format!(
                    "subworkflow {} is supplied more than once",
                    display_id(Some(id))
                ),
            ));
        }
    }

    let compiled_primary = WorkflowCompiler::new(&catalog, primary).compile(&mut errors);
    let mut sub_keys: Vec<&EntityKey> = catalog.subworkflows.keys().collect();
    sub_keys.sort();
    let compiled_subs: Vec<Option<CompiledWorkflow>> = sub_keys
        .into_iter()
        .filter_map(|key| catalog.subworkflows.get(key))
        .map(|sub| WorkflowCompiler::new(&catalog, sub).compile(&mut errors))
        .collect();

    if let Some(errs) = CompileErrors::from_collected(errors) {
        return Err(errs);
    }
    let mut task_list: Vec<(&EntityKey, &&CompiledTask)> = catalog.tasks.iter().collect();
    task_list.sort_by(|a, b| a.0.cmp(b.0));
    Ok(CompiledWorkflowClosure {
        primary: compiled_primary,
        sub_workflows: compiled_subs.into_iter().flatten().collect(),
        tasks: task_list.into_iter().map(|(_, t)| (*t).clone()).collect(),
        launch_plans: Vec::new(),
    })
}

/// The state of compiling one workflow template.
pub(crate) struct WorkflowCompiler<'a> {
    pub catalog: &'a Catalog<'a>,
    pub template: &'a WorkflowTemplate,
    pub errors: Vec<CompileError>,
    /// Interfaces of every node by id: sentinels, top-level nodes, renamed branch then-nodes
    /// and the failure node.
    pub interfaces: HashMap<String, NodeInterface>,
    /// Nodes a promise may read from: the top-level nodes and `start-node`.
    pub referable: HashSet<String>,
    pub graph: Graph,
}

impl<'a> WorkflowCompiler<'a> {
    fn new(catalog: &'a Catalog<'a>, template: &'a WorkflowTemplate) -> Self {
        Self {
            catalog,
            template,
            errors: Vec::new(),
            interfaces: HashMap::new(),
            referable: HashSet::new(),
            graph: Graph::default(),
        }
    }

    pub(crate) fn error(&mut self, code: ErrorCode, node_id: &str, description: String) {
        self.errors
            .push(CompileError::new(code, node_id, description));
    }

    /// Runs every check; appends the errors found to `errors`.
    fn compile(mut self, errors: &mut Vec<CompileError>) -> Option<CompiledWorkflow> {
        let compiled = self.run();
        let failed = !self.errors.is_empty();
        errors.append(&mut self.errors);
        if failed {
            None
        } else {
            compiled
        }
    }

    fn run(&mut self) -> Option<CompiledWorkflow> {
        let template = self.template;
        let wf_name = template.id.as_ref().map_or("root", |id| id.name.as_str());
        if template.nodes.is_empty() {
            self.error(
                ErrorCode::NoNodesFound,
                wf_name,
                format!("workflow {} has no nodes", display_id(template.id.as_ref())),
            );
            return None;
        }
        let iface = template.interface.clone().unwrap_or_default();
        validate_interface(wf_name, &iface, &mut self.errors);
        self.add_sentinels(&iface);

        let mut nodes = sorted_by_id(template.nodes.clone());
        let mut outputs = template.outputs.clone();
        let mut failure_node = template.failure_node.clone();
        for n in nodes.iter_mut().chain(failure_node.as_mut()) {
            promises_from_start_node(n);
        }
        outputs.iter_mut().for_each(binding_from_start_node);
        self.check_node_ids(&nodes);
        self.referable.extend(nodes.iter().map(|n| n.id.clone()));

        // Interfaces first: bindings of any node may read any other node's outputs.
        for n in nodes.iter_mut().chain(failure_node.as_mut()) {
            if let Some(iface) = self.node_interface(n) {
                self.interfaces.insert(n.id.clone(), iface);
            }
        }
        self.resolve_binding_derived_inputs(&nodes);

        for n in &nodes {
            self.validate_node_bindings(n, EdgeKind::Execution);
            self.add_explicit_upstreams(n);
        }
        if let Some(f) = &failure_node {
            self.validate_node_bindings(f, EdgeKind::UpstreamOnly);
        }
        for n in &nodes {
            if !self.graph.has_upstream(&n.id) {
                self.graph.add(START_NODE_ID, &n.id, EdgeKind::Execution);
            }
            if !self.graph.has_downstream(&n.id) {
                self.graph.add(&n.id, END_NODE_ID, EdgeKind::Execution);
            }
        }
        let end_inputs = self
            .interfaces
            .get(END_NODE_ID)
            .map(|i| i.inputs.clone())
            .unwrap_or_default();
        self.validate_bindings(
            END_NODE_ID,
            END_NODE_ID,
            &outputs,
            Some(&end_inputs),
            EdgeKind::Execution,
        );
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        self.check_reachability(&ids);

        if !self.errors.is_empty() {
            return None;
        }
        Some(self.output(nodes, outputs, failure_node))
    }

    fn add_sentinels(&mut self, iface: &TypedInterface) {
        self.interfaces.insert(
            START_NODE_ID.to_string(),
            NodeInterface {
                inputs: Vars::new(),
                outputs: vars_of(iface.inputs.as_ref()),
            },
        );
        self.interfaces.insert(
            END_NODE_ID.to_string(),
            NodeInterface {
                inputs: vars_of(iface.outputs.as_ref()),
                outputs: Vars::new(),
            },
        );
        self.referable.insert(START_NODE_ID.to_string());
    }

    /// Ids must be non-empty, unique, DNS-1123 labels and not a sentinel's.
    fn check_node_ids(&mut self, sorted: &[Node]) {
        let failure = self.template.failure_node.as_ref();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for n in sorted.iter().chain(failure) {
            let id = n.id.as_str();
            if id.is_empty() {
                self.error(
                    ErrorCode::ValueRequired,
                    id,
                    "a node has an empty id".to_string(),
                );
            } else if id == START_NODE_ID || id == END_NODE_ID {
                self.error(
                    ErrorCode::DuplicateId,
                    id,
                    format!("node id [{id}] is reserved for the workflow's sentinel node"),
                );
            } else if !seen.insert(id) {
                self.error(
                    ErrorCode::DuplicateId,
                    id,
                    format!("node id [{id}] is used by more than one node"),
                );
            } else if !is_dns1123_label(id) {
                self.error(
                    ErrorCode::SyntaxError,
                    id,
                    format!("node id [{id}] must be a DNS-1123 label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"),
                );
            }
        }
    }

    /// Explicit `upstream_node_ids` (ordering without data) add execution edges.
    fn add_explicit_upstreams(&mut self, n: &Node) {
        for up in &n.upstream_node_ids {
            if self.referable.contains(up) {
                self.graph.add(up, &n.id, EdgeKind::Execution);
            } else {
                self.error(
                    ErrorCode::NodeReferenceNotFound,
                    &n.id,
                    format!("node [{}] lists upstream node [{up}], which is not a node of this workflow", n.id),
                );
            }
        }
    }

    fn output(
        &self,
        nodes: Vec<Node>,
        outputs: Vec<Binding>,
        failure_node: Option<Node>,
    ) -> CompiledWorkflow {
        // Built field by field: cloning the template would copy every node only to replace it.
        let source = self.template;
        let mut template = WorkflowTemplate {
            id: source.id.clone(),
            metadata: source.metadata.clone(),
            interface: source.interface.clone(),
            nodes: Vec::new(),
            outputs,
            failure_node: None,
            metadata_defaults: source.metadata_defaults,
        };
        let start = Node {
            id: START_NODE_ID.to_string(),
            ..Default::default()
        };
        let end = Node {
            id: END_NODE_ID.to_string(),
            inputs: template.outputs.clone(),
            ..Default::default()
        };
        let mut all = sorted_by_id(nodes.into_iter().chain([start, end]).collect());
        for n in &mut all {
            n.upstream_node_ids.sort();
        }
        template.nodes = all;
        template.failure_node = failure_node.map(|mut f| {
            f.upstream_node_ids.sort();
            f
        });
        CompiledWorkflow {
            template: Some(template),
            connections: Some(self.graph.connection_set()),
        }
    }
}

/// Sorts nodes by id, moving each node once: nodes are large, and sorting them in place moves
/// them O(n log n) times, which dominated compiling 10,000-node workflows.
fn sorted_by_id(nodes: Vec<Node>) -> Vec<Node> {
    let mut slots: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by(|&a, &b| {
        let id = |i: usize| slots[i].as_ref().map(|n| n.id.as_str());
        id(a).cmp(&id(b))
    });
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// flytekit writes promises of workflow inputs with an empty node id; Flyte reads that as
/// `start-node` and writes it out explicitly, so the compiled workflow is unambiguous.
fn promises_from_start_node(n: &mut Node) {
    n.inputs.iter_mut().for_each(binding_from_start_node);
    match &mut n.target {
        Some(node::Target::BranchNode(b)) => {
            let Some(if_else) = b.if_else.as_deref_mut() else {
                return;
            };
            let cases = if_else
                .case
                .as_deref_mut()
                .into_iter()
                .chain(if_else.other.iter_mut());
            for then in cases.filter_map(|c| c.then_node.as_deref_mut()) {
                promises_from_start_node(then);
            }
            if let Some(if_else_block::Default::ElseNode(e)) = &mut if_else.default {
                promises_from_start_node(e);
            }
        }
        Some(node::Target::ArrayNode(a)) => {
            if let Some(inner) = a.node.as_deref_mut() {
                promises_from_start_node(inner);
            }
        }
        _ => {}
    }
}

fn binding_from_start_node(b: &mut Binding) {
    if let Some(data) = &mut b.binding {
        data_from_start_node(data);
    }
}

fn data_from_start_node(data: &mut BindingData) {
    match &mut data.value {
        Some(binding_data::Value::Promise(p)) if p.node_id.is_empty() => {
            p.node_id = START_NODE_ID.to_string();
        }
        Some(binding_data::Value::Collection(c)) => {
            c.bindings.iter_mut().for_each(data_from_start_node)
        }
        Some(binding_data::Value::Map(m)) => m.bindings.values_mut().for_each(data_from_start_node),
        _ => {}
    }
}

/// Whether the node is an approve gate, whose interface comes from its bindings.
pub(crate) fn is_approve_gate(n: &Node) -> bool {
    matches!(
        &n.target,
        Some(node::Target::GateNode(g)) if matches!(g.condition, Some(alula_idl::flyteidl::core::gate_node::Condition::Approve(_)))
    )
}
