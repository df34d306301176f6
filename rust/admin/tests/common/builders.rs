//! Builders for the entities the tests register.

use alula_idl::flyteidl::core::{
    binding_data, literal, literal_type::Type, node, primitive, scalar, task_node, task_template,
    Binding, BindingData, Container, Identifier, Literal, LiteralMap, LiteralType, Node,
    OutputReference, Primitive, ResourceType, Scalar, SimpleType, TaskNode, TaskTemplate,
    TypedInterface, Variable, VariableMap, WorkflowTemplate,
};

pub const PROJECT: &str = "flytesnacks";
pub const DOMAIN: &str = "development";

pub fn id(kind: ResourceType, name: &str, version: &str) -> Identifier {
    Identifier {
        resource_type: kind as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: version.into(),
        org: String::new(),
    }
}

pub fn simple(s: SimpleType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::Simple(s as i32)),
        ..Default::default()
    }
}

pub fn vars(vs: &[(&str, SimpleType)]) -> VariableMap {
    VariableMap {
        variables: vs
            .iter()
            .map(|(n, t)| {
                let var = Variable {
                    r#type: Some(simple(*t)),
                    ..Default::default()
                };
                (n.to_string(), var)
            })
            .collect(),
    }
}

pub fn interface(inputs: &[(&str, SimpleType)], outputs: &[(&str, SimpleType)]) -> TypedInterface {
    TypedInterface {
        inputs: Some(vars(inputs)),
        outputs: Some(vars(outputs)),
    }
}

/// A python task `name@version` taking `a: int` and returning `o0: int`, run in `image`.
pub fn int_task(name: &str, version: &str, image: &str) -> TaskTemplate {
    TaskTemplate {
        id: Some(id(ResourceType::Task, name, version)),
        r#type: "python-task".into(),
        interface: Some(interface(
            &[("a", SimpleType::Integer)],
            &[("o0", SimpleType::Integer)],
        )),
        target: Some(task_template::Target::Container(Container {
            image: image.into(),
            args: vec!["pyflyte-execute".into()],
            ..Default::default()
        })),
        ..Default::default()
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

pub fn bind(var: &str, data: BindingData) -> Binding {
    Binding {
        var: var.into(),
        binding: Some(data),
    }
}

pub fn task_node(node_id: &str, task: &Identifier, inputs: Vec<Binding>) -> Node {
    Node {
        id: node_id.into(),
        inputs,
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(task.clone())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// `wf(x: <input_type>) -> int`: one node `n0` running `task` on `x`.
pub fn one_node_workflow(
    name: &str,
    version: &str,
    task: &Identifier,
    input_type: SimpleType,
) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, name, version)),
        interface: Some(interface(
            &[("x", input_type)],
            &[("out", SimpleType::Integer)],
        )),
        nodes: vec![task_node(
            "n0",
            task,
            vec![bind("a", promise("start-node", "x"))],
        )],
        outputs: vec![bind("out", promise("n0", "o0"))],
        ..Default::default()
    }
}

/// Two nodes feeding each other: a cycle.
pub fn cyclic_workflow(name: &str, version: &str, task: &Identifier) -> WorkflowTemplate {
    WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, name, version)),
        interface: Some(interface(&[], &[("out", SimpleType::Integer)])),
        nodes: vec![
            task_node("n0", task, vec![bind("a", promise("n1", "o0"))]),
            task_node("n1", task, vec![bind("a", promise("n0", "o0"))]),
        ],
        outputs: vec![bind("out", promise("n1", "o0"))],
        ..Default::default()
    }
}

pub fn int_literal(i: i64) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::Integer(i)),
            })),
        }))),
        ..Default::default()
    }
}

pub fn str_literal(s: &str) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive {
                value: Some(primitive::Value::StringValue(s.into())),
            })),
        }))),
        ..Default::default()
    }
}

pub fn literals(entries: &[(&str, Literal)]) -> LiteralMap {
    LiteralMap {
        literals: entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// The request that registers `task` (no description), as most suites register their tasks.
pub fn task_create_request(task: TaskTemplate) -> alula_idl::flyteidl::admin::TaskCreateRequest {
    alula_idl::flyteidl::admin::TaskCreateRequest {
        id: task.id.clone(),
        spec: Some(alula_idl::flyteidl::admin::TaskSpec {
            template: Some(task),
            description: None,
        }),
    }
}
