//! Each test builds a template that trips exactly one check and asserts the code, the node id
//! and a fragment of the message.

use alula_compiler::{compile_task, compile_workflow, requirements, ErrorCode};
use alula_idl::flyteidl::core::{
    binding_data, boolean_expression, comparison_expression, gate_node, if_else_block,
    literal_type::Type, node, operand, promise_attribute, resources, task_template, Alias,
    ApproveCondition, ArrayNode, BindingData, BindingDataCollection, BooleanExpression, BranchNode,
    ComparisonExpression, EnumType, GateNode, IfBlock, IfElseBlock, K8sPod, LiteralType, Node,
    Operand, PromiseAttribute, ResourceType, Resources, Scalar, SimpleType, TypeStructure,
};
use alula_idl::wkt::{value::Kind, ListValue, Struct, Value};

use crate::support::*;

fn branch(id: &str, inputs: Vec<alula_idl::flyteidl::core::Binding>, if_else: IfElseBlock) -> Node {
    Node {
        id: id.into(),
        inputs,
        target: Some(node::Target::BranchNode(Box::new(BranchNode {
            if_else: Some(Box::new(if_else)),
        }))),
        ..Default::default()
    }
}

/// `var > 0` on the branch input `var`.
pub fn gt_zero(var: &str) -> BooleanExpression {
    compare(
        Operand {
            val: Some(operand::Val::Var(var.into())),
        },
        int_operand(0),
    )
}

pub fn int_operand(i: i64) -> Operand {
    Operand {
        val: Some(operand::Val::Scalar(Scalar {
            value: Some(alula_idl::flyteidl::core::scalar::Value::Primitive(
                alula_idl::flyteidl::core::Primitive {
                    value: Some(alula_idl::flyteidl::core::primitive::Value::Integer(i)),
                },
            )),
        })),
    }
}

pub fn compare(left: Operand, right: Operand) -> BooleanExpression {
    BooleanExpression {
        expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
            operator: comparison_expression::Operator::Gt as i32,
            left_value: Some(left),
            right_value: Some(right),
        })),
    }
}

/// `if x > 0: double(x) else: double(x)` as node `b`, reading the workflow input `x`.
pub fn branch_wf(
    if_else: impl FnOnce(&mut IfElseBlock),
) -> alula_idl::flyteidl::core::WorkflowTemplate {
    let then = |id: &str| {
        Box::new(task_node(
            id,
            "double",
            vec![bind("x", promise("start-node", "x"))],
        ))
    };
    let mut block = IfElseBlock {
        case: Some(Box::new(IfBlock {
            condition: Some(gt_zero("x")),
            then_node: Some(then("t")),
        })),
        other: vec![],
        default: Some(if_else_block::Default::ElseNode(then("e"))),
    };
    if_else(&mut block);
    workflow(
        "wf",
        &[("x", int())],
        &[("o", int())],
        vec![branch(
            "b",
            vec![bind("x", promise("start-node", "x"))],
            block,
        )],
        vec![bind("o", promise("b", "o"))],
    )
}

#[test]
fn cycle_is_reported_with_its_path() {
    let mut wf = one_node_wf();
    wf.nodes = vec![
        task_node(
            "n1",
            "add",
            vec![
                bind("x", promise("start-node", "x")),
                bind("y", promise("n3", "o")),
            ],
        ),
        task_node("n2", "double", vec![bind("x", promise("n1", "o"))]),
        task_node("n3", "double", vec![bind("x", promise("n2", "o"))]),
    ];
    wf.outputs = vec![bind("o", promise("n3", "o"))];
    assert_single_error(
        &wf,
        "CycleDetected",
        "n1",
        "A cycle has been detected while traversing the Workflow [n1>n2>n3].",
    );
}

#[test]
fn unreachable_cycle_reports_both() {
    let mut wf = one_node_wf();
    wf.nodes
        .push(task_node("a", "double", vec![bind("x", promise("b", "o"))]));
    wf.nodes
        .push(task_node("b", "double", vec![bind("x", promise("a", "o"))]));
    let errs = errors_of(&wf);
    let codes: Vec<(&str, &str)> = errs
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(codes, [("CycleDetected", "a"), ("UnreachableNodes", "a")]);
    assert!(errs[0].2.contains("[a>b]"), "{}", errs[0].2);
    assert!(
        errs[1]
            .2
            .contains("The Workflow contain unreachable nodes [a, b]."),
        "{}",
        errs[1].2
    );
}

#[test]
fn branch_without_then_node() {
    let wf = branch_wf(|b| {
        b.other.push(IfBlock {
            condition: Some(gt_zero("x")),
            then_node: None,
        })
    });
    assert_single_error(&wf, "BranchNodeIdNotFound", "b", "BranchNode not assigned");
}

#[test]
fn branch_case_without_condition() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            case.condition = None;
        }
    });
    assert_single_error(&wf, "BranchNodeHasNoCondition", "b", "has no condition");
}

#[test]
fn branch_without_default() {
    let wf = branch_wf(|b| b.default = None);
    assert_single_error(
        &wf,
        "BranchNodeHasNoDefault",
        "b",
        "neither an else node nor an error",
    );
}

#[test]
fn branch_condition_on_unknown_var() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            case.condition = Some(gt_zero("y"));
        }
    });
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "b",
        "uses [y], which is not an input of the branch; its inputs are [x: int]",
    );
}

#[test]
fn branch_condition_with_mismatching_operands() {
    let wf = branch_wf(|b| {
        if let Some(case) = b.case.as_mut() {
            let s = Operand {
                val: Some(operand::Val::Scalar(Scalar {
                    value: Some(alula_idl::flyteidl::core::scalar::Value::Primitive(
                        alula_idl::flyteidl::core::Primitive {
                            value: Some(alula_idl::flyteidl::core::primitive::Value::StringValue(
                                "a".into(),
                            )),
                        },
                    )),
                })),
            };
            case.condition = Some(compare(
                Operand {
                    val: Some(operand::Val::Var("x".into())),
                },
                s,
            ));
        }
    });
    assert_single_error(&wf, "MismatchingTypes", "b", "compares [int] with [str]");
}

#[test]
fn branch_cases_with_mismatching_outputs() {
    let wf = branch_wf(|b| {
        b.default = Some(if_else_block::Default::ElseNode(Box::new(task_node(
            "e",
            "greet",
            vec![bind("name", str_lit("n"))],
        ))))
    });
    let errs = errors_of(&wf);
    assert_eq!(errs[0].0, "MismatchingTypes");
    assert_eq!(errs[0].1, "b-e");
    assert!(
        errs[0].2.contains(
            "output [o] of then-node [b-e] has type [str] but an earlier case gives [int]"
        ),
        "{}",
        errs[0].2
    );
}

#[test]
fn binding_without_value() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs[0].binding = None;
    let errs = errors_of(&wf);
    assert_eq!(errs[0].0, "ValueRequired");
    assert!(errs[0]
        .2
        .contains("the binding of input [x] on node [n0] has no value"));
}

#[test]
fn node_without_target() {
    let mut wf = one_node_wf();
    wf.nodes.push(Node {
        id: "n1".into(),
        ..Default::default()
    });
    assert_single_error(&wf, "ValueRequired", "n1", "has no target");
}

#[test]
fn missing_promise_node() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs[0] = bind("x", promise("nope", "o"));
    assert_single_error(
        &wf,
        "NodeReferenceNotFound",
        "n0",
        "reads from node [nope], which is not a node of this workflow",
    );
}

#[test]
fn missing_explicit_upstream() {
    let mut wf = one_node_wf();
    wf.nodes[0].upstream_node_ids = vec!["ghost".into()];
    assert_single_error(
        &wf,
        "NodeReferenceNotFound",
        "n0",
        "lists upstream node [ghost]",
    );
}

#[test]
fn missing_task() {
    let mut wf = one_node_wf();
    wf.nodes[0] = task_node("n0", "missing", vec![]);
    assert_single_error(
        &wf,
        "TaskReferenceNotFound",
        "n0",
        "Referenced Task [p/d/missing@v1] not found.",
    );
}

#[test]
fn missing_subworkflow_and_launch_plan() {
    let mut wf = one_node_wf();
    wf.nodes.push(subworkflow_node("s", "nosub", vec![]));
    wf.nodes.push(launch_plan_node("l", "nolp", vec![]));
    let errs = errors_of(&wf);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("WorkflowReferenceNotFound", "l"),
            ("WorkflowReferenceNotFound", "s")
        ]
    );
    assert!(errs[0]
        .2
        .contains("Referenced LaunchPlan [p/d/nolp@v1] not found."));
    assert!(errs[1]
        .2
        .contains("Referenced Workflow [p/d/nosub@v1] not found."));
}

#[test]
fn unknown_input_var() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs.push(bind("z", int_lit(1)));
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "n0",
        "node [n0] has no input named [z]; its inputs are [x: int]",
    );
}

#[test]
fn unknown_output_var() {
    let mut wf = one_node_wf();
    wf.outputs = vec![bind("o", promise("n0", "out"))];
    assert_single_error(
        &wf,
        "VariableNameNotFound",
        "end-node",
        "reads output [out] of node [n0], which has outputs [o: int]",
    );
}

#[test]
fn duplicate_alias() {
    let mut wf = one_node_wf();
    let alias = |a: &str| Alias {
        var: "o".into(),
        alias: a.into(),
    };
    wf.nodes[0].output_aliases = vec![alias("a"), alias("b")];
    wf.outputs = vec![bind("o", promise("n0", "b"))];
    assert_single_error(
        &wf,
        "DuplicateAlias",
        "n0",
        "output [o] of node [n0] is aliased more than once",
    );
}

#[test]
fn alias_of_unknown_output() {
    let mut wf = one_node_wf();
    wf.nodes[0].output_aliases = vec![Alias {
        var: "nope".into(),
        alias: "a".into(),
    }];
    assert_single_error(
        &wf,
        "ParameterNotBound",
        "n0",
        "alias [a] of node [n0] refers to output [nope]",
    );
}

#[test]
fn duplicate_and_reserved_ids() {
    let mut wf = one_node_wf();
    wf.nodes.push(wf.nodes[0].clone());
    let errs = errors_of(&wf);
    assert!(
        errs.iter().any(|(c, n, d)| c == "DuplicateId"
            && n == "n0"
            && d.contains("used by more than one node")),
        "{errs:#?}"
    );

    let mut wf = one_node_wf();
    wf.nodes[0].id = "start-node".into();
    wf.outputs = vec![bind("o", promise("start-node", "x"))];
    let errs = errors_of(&wf);
    assert!(
        errs.iter()
            .any(|(c, n, d)| c == "DuplicateId" && n == "start-node" && d.contains("reserved")),
        "{errs:#?}"
    );
}

#[test]
fn duplicate_subworkflow() {
    let wf = one_node_wf();
    let sub = workflow(
        "sub",
        &[],
        &[],
        vec![task_node("n0", "double", vec![bind("x", int_lit(1))])],
        vec![],
    );
    let err = compile_workflow(&wf, &[sub.clone(), sub], &std_tasks(), &[]).expect_err("duplicate");
    assert_eq!(err.errors()[0].code, ErrorCode::DuplicateId);
    assert!(err.errors()[0]
        .description
        .contains("subworkflow p/d/sub@v1 is supplied more than once"));
}

#[test]
fn invalid_node_ids() {
    let mut wf = one_node_wf();
    wf.nodes[0].id = "N_0".into();
    wf.outputs = vec![bind("o", promise("N_0", "o"))];
    assert_single_error(&wf, "SyntaxError", "N_0", "must be a DNS-1123 label");
    let mut wf = one_node_wf();
    wf.nodes[0].id = String::new();
    wf.outputs = vec![bind("o", promise("", "o"))];
    let errs = errors_of(&wf);
    assert!(
        errs.iter()
            .any(|(c, _, d)| c == "ValueRequired" && d.contains("empty id")),
        "{errs:#?}"
    );
}

#[test]
fn promise_type_mismatch() {
    let mut wf = one_node_wf();
    wf.nodes.push(task_node(
        "n1",
        "greet",
        vec![bind("name", promise("n0", "o"))],
    ));
    assert_single_error(
        &wf,
        "MismatchingTypes",
        "n1",
        "The output variable 'n0.o' has type [int], but it's assigned to the input variable 'name' which has type type [str].",
    );
}

#[test]
fn literal_type_mismatch() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs = vec![bind("x", str_lit("a"))];
    assert_single_error(
        &wf,
        "MismatchingTypes",
        "n0",
        "Variable [x] (type [str]) doesn't match expected type [int].",
    );
}

#[test]
fn workflow_output_type_mismatch() {
    let mut wf = one_node_wf();
    wf.interface = Some(interface(&[("x", int())], &[("o", string())]));
    assert_single_error(
        &wf,
        "MismatchingTypes",
        "end-node",
        "has type [int], but it's assigned to the input variable 'o' which has type type [str]",
    );
}

#[test]
fn list_bound_to_scalar_input() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs = vec![bind(
        "x",
        BindingData {
            value: Some(binding_data::Value::Collection(BindingDataCollection {
                bindings: vec![int_lit(1)],
            })),
            ..Default::default()
        },
    )];
    assert_single_error(
        &wf,
        "MismatchingBindings",
        "n0",
        "Input [x] on node [n0] expects bindings of type [int].  Received [a list]",
    );
}

#[test]
fn list_elements_are_checked() {
    let tasks = vec![task("sum", &[("xs", list(int()))], &[("o", int())])];
    let collection = BindingData {
        value: Some(binding_data::Value::Collection(BindingDataCollection {
            bindings: vec![int_lit(1), str_lit("two"), promise("start-node", "x")],
        })),
        ..Default::default()
    };
    let wf = workflow(
        "wf",
        &[("x", int())],
        &[],
        vec![task_node("n0", "sum", vec![bind("xs", collection)])],
        vec![],
    );
    let errs = compile_workflow(&wf, &[], &tasks, &[])
        .expect_err("bad element")
        .into_errors();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].code, ErrorCode::MismatchingTypes);
    assert!(errs[0]
        .description
        .contains("Variable [xs] (type [str]) doesn't match expected type [int]."));
}

#[test]
fn bound_twice() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs.push(bind("x", int_lit(2)));
    assert_single_error(
        &wf,
        "ParameterBoundMoreThanOnce",
        "n0",
        "input [x] of node [n0] is bound more than once",
    );
}

#[test]
fn required_input_not_bound() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs.clear();
    assert_single_error(
        &wf,
        "ParameterNotBound",
        "n0",
        "input [x] of node [n0] (type [int]) is required but not bound",
    );
}

#[test]
fn unrecognized_literal() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs = vec![bind(
        "x",
        BindingData {
            value: Some(binding_data::Value::Scalar(Scalar { value: None })),
            ..Default::default()
        },
    )];
    assert_single_error(&wf, "UnrecognizedValue", "n0", "has no recognisable type");
}

#[test]
fn no_nodes() {
    let wf = workflow("empty", &[], &[], vec![], vec![]);
    assert_single_error(
        &wf,
        "NoNodesFound",
        "empty",
        "workflow p/d/empty@v1 has no nodes",
    );
}

#[test]
fn illegal_enum_value() {
    let color = LiteralType {
        r#type: Some(Type::EnumType(EnumType {
            values: vec!["red".into(), "green".into()],
        })),
        ..Default::default()
    };
    let tasks = vec![task("paint", &[("c", color)], &[])];
    let wf = workflow(
        "wf",
        &[],
        &[],
        vec![task_node("n0", "paint", vec![bind("c", str_lit("blue"))])],
        vec![],
    );
    let errs = compile_workflow(&wf, &[], &tasks, &[])
        .expect_err("bad enum")
        .into_errors();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].code, errs[0].node_id.as_str()),
        (ErrorCode::IllegalEnumValue, "n0")
    );
    assert!(errs[0]
        .description
        .contains("bound to [blue], which is not one of the enum's values [red, green]"));
    // A valid value compiles.
    let ok = workflow(
        "wf",
        &[],
        &[],
        vec![task_node("n0", "paint", vec![bind("c", str_lit("red"))])],
        vec![],
    );
    assert!(compile_workflow(&ok, &[], &tasks, &[]).is_ok());
}

fn list_binding() -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Collection(BindingDataCollection {
            bindings: vec![int_lit(1)],
        })),
        ..Default::default()
    }
}

#[test]
fn ambiguous_union_binding() {
    let tasks = vec![task(
        "t",
        &[("u", union(vec![list(int()), list(int())]))],
        &[],
    )];
    let wf = workflow(
        "wf",
        &[],
        &[],
        vec![task_node("n0", "t", vec![bind("u", list_binding())])],
        vec![],
    );
    let errs = compile_workflow(&wf, &[], &tasks, &[])
        .expect_err("ambiguous")
        .into_errors();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].code, ErrorCode::AmbiguousBindingUnionValue);
    assert!(errs[0]
        .description
        .contains("matches more than one variant of [union[list[int], list[int]]]"));
}

#[test]
fn incompatible_union_binding() {
    let tasks = vec![task("t", &[("u", union(vec![list(string()), int()]))], &[])];
    let wf = workflow(
        "wf",
        &[],
        &[],
        vec![task_node("n0", "t", vec![bind("u", list_binding())])],
        vec![],
    );
    let errs = compile_workflow(&wf, &[], &tasks, &[])
        .expect_err("incompatible")
        .into_errors();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].code, ErrorCode::IncompatibleBindingUnionValue);
    assert!(errs[0]
        .description
        .contains("matches no variant of [union[list[str], int]]"));
}

#[test]
fn attribute_path_into_unknown_field() {
    let mut point = simple(SimpleType::Struct);
    point.structure = Some(TypeStructure {
        tag: String::new(),
        dataclass_type: [("x".to_string(), int())].into_iter().collect(),
    });
    let tasks = vec![
        task("mk", &[], &[("p", point)]),
        task("double", &[("x", int())], &[("o", int())]),
    ];
    let attr = |field: &str| {
        let mut b = promise("n0", "p");
        if let Some(binding_data::Value::Promise(p)) = &mut b.value {
            p.attr_path = vec![PromiseAttribute {
                value: Some(promise_attribute::Value::StringValue(field.into())),
            }];
        }
        b
    };
    let make = |field: &str| {
        workflow(
            "wf",
            &[],
            &[],
            vec![
                task_node("n0", "mk", vec![]),
                task_node("n1", "double", vec![bind("x", attr(field))]),
            ],
            vec![],
        )
    };
    assert!(compile_workflow(&make("x"), &[], &tasks, &[]).is_ok());
    let errs = compile_workflow(&make("y"), &[], &tasks, &[])
        .expect_err("no field")
        .into_errors();
    assert_eq!(
        (errs[0].code, errs[0].node_id.as_str()),
        (ErrorCode::FieldNotFound, "n1")
    );
    assert!(
        errs[0].description.contains("reads [y] of output [n0.p]"),
        "{}",
        errs[0].description
    );
}

#[test]
fn task_checks() {
    let mut t = task_template("bad", &[("x", int())], &[]);
    if let Some(task_template::Target::Container(c)) = &mut t.target {
        c.image.clear();
        c.args.clear();
        c.resources = Some(Resources {
            requests: vec![resources::ResourceEntry {
                name: 1,
                value: "lots".into(),
            }],
            limits: vec![],
        });
    }
    let errs = compile_task(&t).expect_err("invalid").into_errors();
    let got: Vec<(ErrorCode, &str)> = errs.iter().map(|e| (e.code, e.node_id.as_str())).collect();
    assert_eq!(
        got,
        [
            (ErrorCode::ValueRequired, "bad"),
            (ErrorCode::ValueRequired, "bad"),
            (ErrorCode::UnrecognizedValue, "bad")
        ]
    );
    assert!(errs[2]
        .description
        .contains("\"lots\" is not a Kubernetes quantity"));
    assert!(errs
        .iter()
        .any(|e| e.description.contains("needs a command or args")));
    assert!(errs
        .iter()
        .any(|e| e.description.contains("without an image")));

    let mut t = task_template("nameless", &[], &[]);
    t.id = None;
    assert_eq!(
        compile_task(&t).expect_err("no id").errors()[0].code,
        ErrorCode::ValueRequired
    );
}

#[test]
fn k8s_pod_container_names() {
    let container = |name: &str| Value {
        kind: Some(Kind::StructValue(Struct {
            fields: [(
                "name".to_string(),
                Value {
                    kind: Some(Kind::StringValue(name.into())),
                },
            )]
            .into_iter()
            .collect(),
        })),
    };
    let pod = |names: &[&str]| K8sPod {
        pod_spec: Some(Struct {
            fields: [(
                "containers".to_string(),
                Value {
                    kind: Some(Kind::ListValue(ListValue {
                        values: names.iter().map(|n| container(n)).collect(),
                    })),
                },
            )]
            .into_iter()
            .collect(),
        }),
        ..Default::default()
    };
    let mut t = task_template("pod", &[], &[]);
    t.target = Some(task_template::Target::K8sPod(pod(&["primary", "Bad_Name"])));
    let errs = compile_task(&t).expect_err("bad container").into_errors();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].code, ErrorCode::InvalidValue);
    assert!(errs[0]
        .description
        .contains("containers[1].name \"Bad_Name\" is not a DNS-1123 label"));
    t.target = Some(task_template::Target::K8sPod(pod(&["primary"])));
    assert!(compile_task(&t).is_ok());
}

#[test]
fn many_errors_are_reported_at_once_and_displayed_as_flyte_does() {
    let mut wf = one_node_wf();
    wf.nodes[0].inputs = vec![bind("x", str_lit("a")), bind("z", int_lit(1))];
    wf.nodes.push(task_node("n1", "missing", vec![]));
    wf.nodes.push(task_node("n2", "greet", vec![]));
    let err = compile(&wf).expect_err("several errors");
    let codes: Vec<ErrorCode> = err.errors().iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::TaskReferenceNotFound,
            ErrorCode::VariableNameNotFound,
            ErrorCode::MismatchingTypes,
            ErrorCode::ParameterNotBound
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("Collected Errors: 4\n\tError 0: Code: TaskReferenceNotFound, Node Id: n1, Description: Referenced Task [p/d/missing@v1] not found."), "{text}");
    assert_eq!(text.lines().count(), 5);
    assert!(text.contains("\n\tError 3: Code: ParameterNotBound, Node Id: n2, Description: input [name] of node [n2]"), "{text}");
}

#[test]
fn gate_and_array_misconfigurations() {
    let mut wf = one_node_wf();
    wf.nodes.push(Node {
        id: "g".into(),
        target: Some(node::Target::GateNode(GateNode { condition: None })),
        ..Default::default()
    });
    wf.nodes.push(Node {
        id: "a".into(),
        target: Some(node::Target::ArrayNode(Box::default())),
        ..Default::default()
    });
    let errs = errors_of(&wf);
    assert!(
        errs.iter()
            .any(|(c, n, d)| c == "ValueRequired" && n == "g" && d.contains("no condition")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|(c, n, d)| c == "ValueRequired" && n == "a" && d.contains("no inner node")),
        "{errs:#?}"
    );
    // An approve gate passes its binding through; binding it to a missing node is reported.
    let mut wf = one_node_wf();
    wf.nodes.push(Node {
        id: "ok".into(),
        inputs: vec![bind("v", promise("ghost", "o"))],
        target: Some(node::Target::GateNode(GateNode {
            condition: Some(gate_node::Condition::Approve(ApproveCondition {
                signal_id: "s".into(),
            })),
        })),
        ..Default::default()
    });
    assert_single_error(
        &wf,
        "NodeReferenceNotFound",
        "ok",
        "reads from node [ghost]",
    );
}

#[test]
fn requirements_walk_everything() {
    let sub = workflow(
        "sub",
        &[],
        &[],
        vec![task_node("n0", "greet", vec![])],
        vec![],
    );
    let mut wf = branch_wf(|b| {
        b.default = Some(if_else_block::Default::ElseNode(Box::new(task_node(
            "e",
            "add",
            vec![],
        ))))
    });
    wf.nodes.push(subworkflow_node("s", "sub", vec![]));
    wf.nodes.push(subworkflow_node("s2", "sub", vec![]));
    wf.nodes.push(launch_plan_node("l", "lp", vec![]));
    wf.nodes.push(Node {
        id: "m".into(),
        target: Some(node::Target::ArrayNode(Box::new(ArrayNode {
            node: Some(Box::new(task_node("m", "mapped", vec![]))),
            ..Default::default()
        }))),
        ..Default::default()
    });
    wf.failure_node = Some(task_node("f", "cleanup", vec![]));
    let req = requirements(&wf, &[sub]);
    let names: Vec<&str> = req.task_ids.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["add", "cleanup", "double", "greet", "mapped"]);
    assert_eq!(
        req.launch_plan_ids,
        vec![id(ResourceType::LaunchPlan, "lp")]
    );
}
