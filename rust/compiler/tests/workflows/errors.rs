//! Each test builds a template that trips exactly one check and asserts the code, the node id
//! and a fragment of the message.

mod graph;
mod tasks;
mod types;

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
