//! Small builders for workflow templates in tests.

use alula_compiler::{compile_workflow, CompileErrors, LaunchPlanInterface};
use alula_idl::flyteidl::core::{
    binding_data, literal_type::Type, node, parameter, primitive, scalar, task_node, task_template,
    workflow_node, Binding, BindingData, CompiledTask, CompiledWorkflowClosure, Container,
    Identifier, LiteralType, Node, OutputReference, Parameter, ParameterMap, Primitive,
    ResourceType, Scalar, SimpleType, TaskNode, TaskTemplate, TypedInterface, UnionType, Variable,
    VariableMap, WorkflowNode, WorkflowTemplate,
};

pub fn id(kind: ResourceType, name: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
        version: "v1".into(),
        org: String::new(),
    }
}

pub fn simple(s: SimpleType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::Simple(s as i32)),
        ..Default::default()
    }
}
pub fn int() -> LiteralType {
    simple(SimpleType::Integer)
}
pub fn string() -> LiteralType {
    simple(SimpleType::String)
}
pub fn list(t: LiteralType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::CollectionType(Box::new(t))),
        ..Default::default()
    }
}
pub fn union(vs: Vec<LiteralType>) -> LiteralType {
    LiteralType {
        r#type: Some(Type::UnionType(UnionType { variants: vs })),
        ..Default::default()
    }
}

pub fn vars(vs: &[(&str, LiteralType)]) -> VariableMap {
    VariableMap {
        variables: vs
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    Variable {
                        r#type: Some(t.clone()),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

pub fn interface(
    inputs: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
) -> TypedInterface {
    TypedInterface {
        inputs: Some(vars(inputs)),
        outputs: Some(vars(outputs)),
    }
}

pub fn task_template(
    name: &str,
    inputs: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
) -> TaskTemplate {
    TaskTemplate {
        id: Some(id(ResourceType::Task, name)),
        r#type: "python-task".into(),
        interface: Some(interface(inputs, outputs)),
        target: Some(task_template::Target::Container(Container {
            image: "img".into(),
            args: vec!["pyflyte-execute".into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn task(
    name: &str,
    inputs: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
) -> CompiledTask {
    CompiledTask {
        template: Some(task_template(name, inputs, outputs)),
    }
}

pub fn promise(node_id: &str, var: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node_id.into(),
            var: var.into(),
            attr_path: vec![],
        })),
        ..Default::default()
    }
}

pub fn prim(v: primitive::Value) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Scalar(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(v) })),
        })),
        ..Default::default()
    }
}
pub fn int_lit(i: i64) -> BindingData {
    prim(primitive::Value::Integer(i))
}
pub fn str_lit(s: &str) -> BindingData {
    prim(primitive::Value::StringValue(s.into()))
}

pub fn bind(var: &str, data: BindingData) -> Binding {
    Binding {
        var: var.into(),
        binding: Some(data),
    }
}

pub fn task_node(node_id: &str, task_name: &str, inputs: Vec<Binding>) -> Node {
    Node {
        id: node_id.into(),
        inputs,
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(id(
                ResourceType::Task,
                task_name,
            ))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn subworkflow_node(node_id: &str, wf_name: &str, inputs: Vec<Binding>) -> Node {
    Node {
        id: node_id.into(),
        inputs,
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::SubWorkflowRef(id(
                ResourceType::Workflow,
                wf_name,
            ))),
        })),
        ..Default::default()
    }
}

pub fn launch_plan_node(node_id: &str, lp_name: &str, inputs: Vec<Binding>) -> Node {
    Node {
        id: node_id.into(),
        inputs,
        target: Some(node::Target::WorkflowNode(WorkflowNode {
            reference: Some(workflow_node::Reference::LaunchplanRef(id(
                ResourceType::LaunchPlan,
                lp_name,
            ))),
        })),
        ..Default::default()
    }
}

/// A launch plan with `required` inputs and `defaulted` inputs (default 0).
pub fn launch_plan(
    name: &str,
    required: &[(&str, LiteralType)],
    defaulted: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
) -> LaunchPlanInterface {
    let param = |t: &LiteralType, behavior| Parameter {
        var: Some(Variable {
            r#type: Some(t.clone()),
            ..Default::default()
        }),
        behavior: Some(behavior),
    };
    let mut parameters = std::collections::BTreeMap::new();
    for (n, t) in required {
        parameters.insert(n.to_string(), param(t, parameter::Behavior::Required(true)));
    }
    for (n, t) in defaulted {
        parameters.insert(
            n.to_string(),
            param(t, parameter::Behavior::Default(Default::default())),
        );
    }
    LaunchPlanInterface {
        id: id(ResourceType::LaunchPlan, name),
        inputs: ParameterMap {
            parameters: parameters.into_iter().collect(),
        },
        outputs: vars(outputs),
    }
}

pub fn workflow(
    name: &str,
    inputs: &[(&str, LiteralType)],
    outputs: &[(&str, LiteralType)],
    nodes: Vec<Node>,
    output_bindings: Vec<Binding>,
) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, name)),
        interface: Some(interface(inputs, outputs)),
        nodes,
        outputs: output_bindings,
        ..Default::default()
    }
}

/// The tasks most tests use: `double(x: int) -> o: int`, `add(x: int, y: int) -> o: int`,
/// `greet(name: str) -> o: str`.
pub fn std_tasks() -> Vec<CompiledTask> {
    vec![
        task("double", &[("x", int())], &[("o", int())]),
        task("add", &[("x", int()), ("y", int())], &[("o", int())]),
        task("greet", &[("name", string())], &[("o", string())]),
    ]
}

pub fn compile(wf: &WorkflowTemplate) -> Result<CompiledWorkflowClosure, CompileErrors> {
    compile_workflow(wf, &[], &std_tasks(), &[])
}

/// Compiles, expecting failure; returns (code, node id, description) triples.
pub fn errors_of(wf: &WorkflowTemplate) -> Vec<(String, String, String)> {
    match compile(wf) {
        Ok(_) => panic!("expected compile errors"),
        Err(e) => e
            .errors()
            .iter()
            .map(|e| {
                (
                    e.code.as_str().to_string(),
                    e.node_id.clone(),
                    e.description.clone(),
                )
            })
            .collect(),
    }
}

/// Asserts that exactly one error was found, with this code, node and description fragment.
pub fn assert_single_error(wf: &WorkflowTemplate, code: &str, node_id: &str, fragment: &str) {
    let errs = errors_of(wf);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let (c, n, d) = &errs[0];
    assert_eq!((c.as_str(), n.as_str()), (code, node_id), "{d}");
    assert!(d.contains(fragment), "description {d:?} lacks {fragment:?}");
}

/// `start -> n0(double) -> end`, the smallest valid workflow.
pub fn one_node_wf() -> WorkflowTemplate {
    workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![task_node(
            "n0",
            "double",
            vec![bind("x", promise("start-node", "x"))],
        )],
        vec![bind("o", promise("n0", "o"))],
    )
}
