//! Types: promises, literals and outputs that do not match, lists, unions, enums and attribute paths.

use super::*;

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
