//! Task templates, pods, gates and arrays, many errors at once, and what `requirements` walks.

use super::*;

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
