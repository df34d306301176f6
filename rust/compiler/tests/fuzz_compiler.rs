//! Fuzzing the compiler on closures strangers can register: random task templates, random
//! workflow templates and subworkflows (drawn from the descriptor set, their task references
//! pointed at the supplied tasks so the graph checks are reached), and byte mutations of a valid
//! workflow. No input may panic or hang (a subworkflow that calls itself, a cycle through
//! branches), every refusal lists at least one error with a message, and a closure that
//! compiles compiles again from its own output.
//!
//! Case counts: `ALULA_FUZZ_CASES`, seed: `ALULA_FUZZ_SEED` (see `rust/fuzz/README.md`).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::sync::OnceLock;
use std::time::Duration;

use alula_compiler::{compile_task, compile_workflow, requirements, LaunchPlanInterface};
use alula_fuzz::{bounded, config, mutate, Entropy, Schema};
use alula_idl::flyteidl::core::{
    node, task_node, workflow_node, CompiledTask, Identifier, Node, ResourceType, TaskTemplate,
    WorkflowTemplate,
};
use proptest::prelude::*;
use prost::Message;

/// Compiling a random closure takes well under a millisecond in a debug build.
const LIMIT: Duration = Duration::from_secs(10);

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::load)
}

fn id(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

/// Points task and subworkflow references at entities that exist (a random identifier almost
/// never matches one), keeping the rest of each node as drawn.
fn aim(nodes: &mut [Node], tasks: usize, subworkflows: usize, e: &mut Entropy<'_>) {
    for n in nodes {
        match &mut n.target {
            Some(node::Target::TaskNode(t)) if tasks > 0 && !e.chance(20) => {
                let name = format!("t{}", e.below(tasks));
                t.reference = Some(task_node::Reference::ReferenceId(id(
                    ResourceType::Task,
                    &name,
                )));
            }
            Some(node::Target::WorkflowNode(w)) if !e.chance(20) => {
                w.reference = Some(if subworkflows > 0 && e.chance(200) {
                    let name = format!("s{}", e.below(subworkflows));
                    workflow_node::Reference::SubWorkflowRef(id(ResourceType::Workflow, &name))
                } else {
                    workflow_node::Reference::LaunchplanRef(id(ResourceType::LaunchPlan, "lp"))
                });
            }
            Some(node::Target::BranchNode(b)) => {
                if let Some(ie) = b.if_else.as_mut() {
                    let inner = ie.case.iter_mut().flat_map(|c| c.then_node.as_deref_mut());
                    let mut owned: Vec<Node> = inner.map(std::mem::take).collect();
                    aim(&mut owned, tasks, subworkflows, e);
                    for (c, n) in ie
                        .case
                        .iter_mut()
                        .filter(|c| c.then_node.is_some())
                        .zip(owned)
                    {
                        c.then_node = Some(Box::new(n));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Compiles a drawn closure and checks the properties; `entropy` decides everything.
fn compile_drawn(entropy: &[u8]) {
    let mut e = Entropy::new(entropy);
    let mut tasks = Vec::new();
    for i in 0..e.below(4) {
        let bytes = schema().generate("flyteidl.core.TaskTemplate", &mut e);
        let mut template = TaskTemplate::decode(bytes.as_slice()).unwrap();
        template.id = Some(id(ResourceType::Task, &format!("t{i}")));
        match compile_task(&template) {
            Ok(compiled) => tasks.push(compiled),
            Err(errors) => check_errors(&errors),
        }
    }
    let count = e.below(3);
    let mut workflows: Vec<WorkflowTemplate> = (0..=count)
        .map(|i| {
            let bytes = schema().generate("flyteidl.core.WorkflowTemplate", &mut e);
            let mut w = WorkflowTemplate::decode(bytes.as_slice()).unwrap();
            let name = if i == 0 {
                "wf".to_string()
            } else {
                format!("s{}", i - 1)
            };
            w.id = Some(id(ResourceType::Workflow, &name));
            aim(&mut w.nodes, tasks.len(), count, &mut e);
            w
        })
        .collect();
    let primary = workflows.remove(0);
    let lp = LaunchPlanInterface {
        id: id(ResourceType::LaunchPlan, "lp"),
        inputs: Default::default(),
        outputs: Default::default(),
    };
    check_workflow(&primary, &workflows, &tasks, &[lp]);
}

fn check_errors(errors: &alula_compiler::CompileErrors) {
    let text = errors.to_string();
    assert!(!text.trim().is_empty(), "a refusal without a message");
}

fn check_workflow(
    primary: &WorkflowTemplate,
    subworkflows: &[WorkflowTemplate],
    tasks: &[CompiledTask],
    launch_plans: &[LaunchPlanInterface],
) {
    let _ = requirements(primary, subworkflows);
    match compile_workflow(primary, subworkflows, tasks, launch_plans) {
        Err(errors) => check_errors(&errors),
        Ok(closure) => {
            // What the compiler produced is a valid input again (admin recompiles stored
            // closures; the engine compiles dynamic workflows from the same shapes).
            let strip = |t: Option<&WorkflowTemplate>| {
                let mut t = t.cloned().unwrap();
                t.nodes
                    .retain(|n| n.id != "start-node" && n.id != "end-node");
                t
            };
            let again_primary = strip(closure.primary.as_ref().and_then(|c| c.template.as_ref()));
            let again_subs: Vec<WorkflowTemplate> = closure
                .sub_workflows
                .iter()
                .map(|c| strip(c.template.as_ref()))
                .collect();
            if let Err(errors) =
                compile_workflow(&again_primary, &again_subs, &closure.tasks, launch_plans)
            {
                panic!("a compiled closure does not compile again: {errors}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn random_closures_compile_or_fail_with_errors(
        entropy in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        bounded(LIMIT, "compile", move || compile_drawn(&entropy));
    }

    /// A valid one-task workflow with its bytes damaged.
    #[test]
    fn mutated_valid_workflows_compile_or_fail_with_errors(
        entropy in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        bounded(LIMIT, "compile", move || {
            let (template, task) = valid();
            let mut e = Entropy::new(&entropy);
            let mut bytes = template.encode_to_vec();
            mutate(&mut bytes, &mut e);
            let Ok(mutated) = WorkflowTemplate::decode(bytes.as_slice()) else { return };
            check_workflow(&mutated, &[], &[task], &[]);
        });
    }
}

/// `wf(x: int) -> int` running `t0` once; built from the task the schema draws with a fixed
/// entropy, so it stays valid whatever `proto/` adds.
fn valid() -> (WorkflowTemplate, CompiledTask) {
    use alula_idl::flyteidl::core::{
        binding_data, literal_type, Binding, BindingData, LiteralType, OutputReference, SimpleType,
        TypedInterface, Variable, VariableMap,
    };
    let int = || LiteralType {
        r#type: Some(literal_type::Type::Simple(SimpleType::Integer as i32)),
        ..Default::default()
    };
    let vars = |name: &str| VariableMap {
        variables: [(
            name.to_string(),
            Variable {
                r#type: Some(int()),
                ..Default::default()
            },
        )]
        .into(),
    };
    let promise = |node: &str, var: &str| BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node.into(),
            var: var.into(),
            attr_path: vec![],
        })),
        ..Default::default()
    };
    let task = TaskTemplate {
        id: Some(id(ResourceType::Task, "t0")),
        r#type: "python-task".into(),
        interface: Some(TypedInterface {
            inputs: Some(vars("a")),
            outputs: Some(vars("o0")),
        }),
        ..Default::default()
    };
    let workflow = WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, "wf")),
        interface: Some(TypedInterface {
            inputs: Some(vars("x")),
            outputs: Some(vars("out")),
        }),
        nodes: vec![Node {
            id: "n0".into(),
            inputs: vec![Binding {
                var: "a".into(),
                binding: Some(promise("start-node", "x")),
            }],
            target: Some(node::Target::TaskNode(
                alula_idl::flyteidl::core::TaskNode {
                    reference: Some(task_node::Reference::ReferenceId(id(
                        ResourceType::Task,
                        "t0",
                    ))),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }],
        outputs: vec![Binding {
            var: "out".into(),
            binding: Some(promise("n0", "o0")),
        }],
        ..Default::default()
    };
    let compiled = compile_task(&task).unwrap();
    compile_workflow(&workflow, &[], std::slice::from_ref(&compiled), &[]).unwrap();
    (workflow, compiled)
}
