//! The interface each kind of node exposes (Flyte's `ValidateUnderlyingInterface`), and output
//! aliases.

use std::collections::{BTreeMap, HashSet};

use alula_core::ids::{display_id, EntityKey};
use alula_core::types::{literal_type_of_scalar, simple};
use alula_idl::flyteidl::core::{
    binding_data, gate_node, literal_type::Type, node::Target, parameter, task_node, workflow_node,
    BindingData, Identifier, LiteralType, Node, SimpleType,
};

use crate::bindings::resolve_attr_path;
use crate::errors::ErrorCode;
use crate::workflow::{is_approve_gate, vars_of, NodeInterface, Vars, WorkflowCompiler};

impl WorkflowCompiler<'_> {
    /// The node's interface with output aliases applied. Branch then-nodes are renamed and
    /// registered here too. Approve gates and branch inputs are completed later, by
    /// [`Self::resolve_binding_derived_inputs`], because they depend on other nodes' outputs.
    pub(crate) fn node_interface(&mut self, n: &mut Node) -> Option<NodeInterface> {
        let mut iface = self.underlying_interface(n)?;
        // An approve gate's outputs are known only later; its aliases are applied then.
        if !is_approve_gate(n) {
            self.apply_aliases(n, &mut iface.outputs);
        }
        Some(iface)
    }

    fn underlying_interface(&mut self, n: &mut Node) -> Option<NodeInterface> {
        let id = n.id.clone();
        match &mut n.target {
            None => {
                self.error(
                    ErrorCode::ValueRequired,
                    &id,
                    format!(
                        "node [{id}] has no target: a task, workflow, branch, gate or array node"
                    ),
                );
                None
            }
            Some(Target::TaskNode(t)) => {
                let Some(task_node::Reference::ReferenceId(task_id)) = &t.reference else {
                    self.error(
                        ErrorCode::ValueRequired,
                        &id,
                        format!("task node [{id}] has no task reference"),
                    );
                    return None;
                };
                let Some(task) = self.catalog.tasks.get(&EntityKey::from(task_id)) else {
                    self.error(
                        ErrorCode::TaskReferenceNotFound,
                        &id,
                        format!("Referenced Task [{}] not found.", display_id(Some(task_id))),
                    );
                    return None;
                };
                let iface = task.template.as_ref().and_then(|t| t.interface.as_ref());
                Some(NodeInterface {
                    inputs: vars_of(iface.and_then(|i| i.inputs.as_ref())),
                    outputs: vars_of(iface.and_then(|i| i.outputs.as_ref())),
                })
            }
            Some(Target::WorkflowNode(w)) => match &w.reference {
                Some(workflow_node::Reference::LaunchplanRef(lp_id)) => {
                    let lp_id = lp_id.clone();
                    self.launch_plan_interface(n, &lp_id)
                }
                Some(workflow_node::Reference::SubWorkflowRef(wf_id)) => {
                    let Some(sub) = self.catalog.subworkflows.get(&EntityKey::from(wf_id)) else {
                        self.error(
                            ErrorCode::WorkflowReferenceNotFound,
                            &id,
                            format!(
                                "Referenced Workflow [{}] not found.",
                                display_id(Some(wf_id))
                            ),
                        );
                        return None;
                    };
                    let iface = sub.interface.as_ref();
                    Some(NodeInterface {
                        inputs: vars_of(iface.and_then(|i| i.inputs.as_ref())),
                        outputs: vars_of(iface.and_then(|i| i.outputs.as_ref())),
                    })
                }
                None => {
                    self.error(
                        ErrorCode::ValueRequired,
                        &id,
                        format!("workflow node [{id}] has no reference"),
                    );
                    None
                }
            },
            Some(Target::GateNode(g)) => match &g.condition {
                // Filled in from the bindings once every other interface is known.
                Some(gate_node::Condition::Approve(_)) => Some(NodeInterface::default()),
                Some(gate_node::Condition::Signal(s)) => {
                    let Some(t) = &s.r#type else {
                        self.error(
                            ErrorCode::ValueRequired,
                            &id,
                            format!("signal gate [{id}] has no type"),
                        );
                        return None;
                    };
                    Some(NodeInterface {
                        inputs: Vars::new(),
                        outputs: BTreeMap::from([(s.output_variable_name.clone(), t.clone())]),
                    })
                }
                Some(gate_node::Condition::Sleep(_)) => Some(NodeInterface::default()),
                None => {
                    self.error(
                        ErrorCode::ValueRequired,
                        &id,
                        format!("gate node [{id}] has no condition (approve, signal or sleep)"),
                    );
                    None
                }
            },
            // flytekit already gives the inner node list-typed inputs and outputs.
            Some(Target::ArrayNode(a)) => match a.node.as_deref_mut() {
                Some(inner) => self.underlying_interface(inner),
                None => {
                    self.error(
                        ErrorCode::ValueRequired,
                        &id,
                        format!("array node [{id}] has no inner node"),
                    );
                    None
                }
            },
            Some(Target::BranchNode(_)) => self.branch_interface(n),
        }
    }

    /// Inputs: the launch plan's required parameters plus the defaulted ones this node binds.
    fn launch_plan_interface(&mut self, n: &Node, lp_id: &Identifier) -> Option<NodeInterface> {
        let Some(lp) = self.catalog.launch_plans.get(&EntityKey::from(lp_id)) else {
            self.error(
                ErrorCode::WorkflowReferenceNotFound,
                &n.id,
                format!(
                    "Referenced LaunchPlan [{}] not found.",
                    display_id(Some(lp_id))
                ),
            );
            return None;
        };
        let inputs = lp
            .inputs
            .parameters
            .iter()
            .filter(|(name, p)| {
                matches!(p.behavior, Some(parameter::Behavior::Required(true)))
                    || n.inputs.iter().any(|b| &b.var == *name)
            })
            .filter_map(|(name, p)| Some((name.clone(), p.var.as_ref()?.r#type.clone()?)))
            .collect();
        Some(NodeInterface {
            inputs,
            outputs: vars_of(Some(&lp.outputs)),
        })
    }

    /// Renames outputs per `output_aliases`; aliasing an unknown output or the same output
    /// twice is an error.
    fn apply_aliases(&mut self, n: &Node, outputs: &mut Vars) {
        let mut aliases: BTreeMap<&str, &str> = BTreeMap::new();
        for a in &n.output_aliases {
            if aliases.insert(a.var.as_str(), a.alias.as_str()).is_some() {
                self.error(
                    ErrorCode::DuplicateAlias,
                    &n.id,
                    format!(
                        "output [{}] of node [{}] is aliased more than once (again as [{}])",
                        a.var, n.id, a.alias
                    ),
                );
            }
        }
        for (var, alias) in aliases {
            match outputs.remove(var) {
                Some(t) => {
                    outputs.insert(alias.to_string(), t);
                }
                None => self.error(
                    ErrorCode::ParameterNotBound,
                    &n.id,
                    format!("alias [{alias}] of node [{}] refers to output [{var}], which the node does not have", n.id),
                ),
            }
        }
    }

    /// Approve gates pass their inputs through as outputs, and branch nodes take as inputs
    /// whatever they bind: both are typed from the bindings' sources, so they are resolved
    /// after every other node. Approve gates may read from each other, hence the fixpoint.
    pub(crate) fn resolve_binding_derived_inputs(&mut self, nodes: &[Node]) {
        for n in nodes
            .iter()
            .filter(|n| matches!(n.target, Some(Target::BranchNode(_))))
        {
            let inputs = self.binding_vars(n);
            if let Some(iface) = self.interfaces.get_mut(&n.id) {
                iface.inputs = inputs;
            }
        }
        let gates: Vec<&Node> = nodes.iter().filter(|n| is_approve_gate(n)).collect();
        let mut resolved: HashSet<&str> = HashSet::new();
        let waits_on_gate = |g: &Node, resolved: &HashSet<&str>| {
            g.inputs.iter().any(
                |b| match b.binding.as_ref().and_then(|d| d.value.as_ref()) {
                    Some(binding_data::Value::Promise(p)) => {
                        p.node_id != g.id
                            && !resolved.contains(p.node_id.as_str())
                            && gates.iter().any(|other| other.id == p.node_id)
                    }
                    _ => false,
                },
            )
        };
        loop {
            let mut progressed = false;
            for g in &gates {
                if resolved.contains(g.id.as_str()) || waits_on_gate(g, &resolved) {
                    continue;
                }
                self.resolve_approve_gate(g);
                resolved.insert(g.id.as_str());
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        // Gates that wait on each other form a cycle, reported later; type what is known.
        for g in gates.iter().filter(|g| !resolved.contains(g.id.as_str())) {
            self.resolve_approve_gate(g);
        }
    }

    fn resolve_approve_gate(&mut self, g: &Node) {
        let inputs = self.binding_vars(g);
        let mut outputs = inputs.clone();
        self.apply_aliases(g, &mut outputs);
        self.interfaces
            .insert(g.id.clone(), NodeInterface { inputs, outputs });
    }

    /// The types of a node's bindings, as far as their sources are known.
    pub(crate) fn binding_vars(&self, n: &Node) -> Vars {
        n.inputs
            .iter()
            .filter_map(|b| Some((b.var.clone(), self.binding_type(b.binding.as_ref()?)?)))
            .collect()
    }

    /// The type a binding delivers, without reporting anything: problems are reported when the
    /// bindings themselves are validated.
    pub(crate) fn binding_type(&self, data: &BindingData) -> Option<LiteralType> {
        let of = |t: Type| LiteralType {
            r#type: Some(t),
            ..Default::default()
        };
        match data.value.as_ref()? {
            binding_data::Value::Scalar(s) => literal_type_of_scalar(s),
            binding_data::Value::Promise(p) => {
                let t = self.interfaces.get(&p.node_id)?.outputs.get(&p.var)?;
                resolve_attr_path(t, &p.attr_path).ok().flatten()
            }
            binding_data::Value::Collection(c) => {
                let elem = c.bindings.first().and_then(|b| self.binding_type(b));
                Some(of(Type::CollectionType(Box::new(
                    elem.unwrap_or_else(|| simple(SimpleType::None)),
                ))))
            }
            binding_data::Value::Map(m) => {
                let value = m
                    .bindings
                    .values()
                    .next()
                    .and_then(|b| self.binding_type(b));
                Some(of(Type::MapValueType(Box::new(
                    value.unwrap_or_else(|| simple(SimpleType::None)),
                ))))
            }
            binding_data::Value::OffloadedMetadata(o) => o.inferred_type.clone(),
        }
    }
}
