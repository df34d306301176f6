//! Branch nodes: evaluating `if`/`elif` conditions against the branch's inputs.

use alula_idl::flyteidl::core::{
    boolean_expression::Expr, comparison_expression::Operator,
    conjunction_expression::LogicalOperator, if_else_block, node, operand, scalar,
    BooleanExpression, ComparisonExpression, LiteralMap, Node, Operand,
};

use crate::literals::{as_primitive, compare_primitives, is_none};
use crate::EngineError;

/// The case index meaning "the else node".
pub const ELSE_CASE: usize = usize::MAX;

/// What a branch decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run the node of this case (0 = `if`, 1.. = `elif`s, [`ELSE_CASE`]).
    Case(usize),
    /// No case held and the default is an error: fail with this message.
    Fail(String),
}

/// Picks the first case whose condition holds, else the default.
pub fn decide(branch_node: &Node, inputs: &LiteralMap) -> Result<Decision, EngineError> {
    let ie = if_else(branch_node)?;
    let cases = ie.case.as_deref().into_iter().chain(ie.other.iter());
    for (i, case) in cases.enumerate() {
        let condition = case.condition.as_ref().ok_or_else(|| {
            EngineError::InvalidWorkflow(format!(
                "branch {:?} case {i} has no condition",
                branch_node.id
            ))
        })?;
        if evaluate(condition, inputs).map_err(|m| {
            EngineError::InvalidWorkflow(format!("branch {:?} case {i}: {m}", branch_node.id))
        })? {
            return Ok(Decision::Case(i));
        }
    }
    match &ie.default {
        Some(if_else_block::Default::ElseNode(_)) => Ok(Decision::Case(ELSE_CASE)),
        Some(if_else_block::Default::Error(e)) => Ok(Decision::Fail(e.message.clone())),
        None => Ok(Decision::Fail(format!(
            "no condition of branch {:?} was met",
            branch_node.id
        ))),
    }
}

fn if_else(branch_node: &Node) -> Result<&alula_idl::flyteidl::core::IfElseBlock, EngineError> {
    match &branch_node.target {
        Some(node::Target::BranchNode(b)) => b.if_else.as_deref().ok_or_else(|| {
            EngineError::InvalidWorkflow(format!(
                "branch {:?} has no if_else block",
                branch_node.id
            ))
        }),
        _ => Err(EngineError::InvalidWorkflow(format!(
            "node {:?} is not a branch",
            branch_node.id
        ))),
    }
}

/// The node that runs for `case` of a branch.
pub fn case_node(branch_node: &Node, case: usize) -> Result<Node, EngineError> {
    let ie = if_else(branch_node)?;
    let node = if case == ELSE_CASE {
        match &ie.default {
            Some(if_else_block::Default::ElseNode(n)) => Some(n.as_ref()),
            _ => None,
        }
    } else if case == 0 {
        ie.case.as_deref().and_then(|c| c.then_node.as_deref())
    } else {
        ie.other.get(case - 1).and_then(|c| c.then_node.as_deref())
    };
    node.cloned().ok_or_else(|| {
        EngineError::InvalidWorkflow(format!(
            "branch {:?} has no node for case {case}",
            branch_node.id
        ))
    })
}

pub fn evaluate(expr: &BooleanExpression, inputs: &LiteralMap) -> Result<bool, String> {
    match &expr.expr {
        Some(Expr::Comparison(c)) => compare(c, inputs),
        Some(Expr::Conjunction(c)) => {
            let left = c
                .left_expression
                .as_ref()
                .ok_or("conjunction without left side")?;
            let right = c
                .right_expression
                .as_ref()
                .ok_or("conjunction without right side")?;
            Ok(match c.operator() {
                LogicalOperator::And => evaluate(left, inputs)? && evaluate(right, inputs)?,
                LogicalOperator::Or => evaluate(left, inputs)? || evaluate(right, inputs)?,
            })
        }
        None => Err("empty boolean expression".into()),
    }
}

/// An operand: a primitive, or `None` (for `is_none()` checks).
enum Value<'a> {
    Primitive(&'a alula_idl::flyteidl::core::primitive::Value),
    None,
}

fn operand<'a>(op: &'a Operand, inputs: &'a LiteralMap) -> Result<Value<'a>, String> {
    match &op.val {
        #[allow(deprecated)] // still sent by older SDKs
        Some(operand::Val::Primitive(p)) => p
            .value
            .as_ref()
            .map(Value::Primitive)
            .ok_or("empty primitive".into()),
        Some(operand::Val::Var(name)) => {
            let lit = inputs
                .literals
                .get(name)
                .ok_or_else(|| format!("no input named {name:?}"))?;
            if is_none(lit) {
                return Ok(Value::None);
            }
            as_primitive(lit)
                .map(Value::Primitive)
                .ok_or_else(|| format!("input {name:?} is not a primitive"))
        }
        Some(operand::Val::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(p)) => p
                .value
                .as_ref()
                .map(Value::Primitive)
                .ok_or("empty primitive".into()),
            Some(scalar::Value::NoneType(_)) => Ok(Value::None),
            _ => Err("only primitive and none operands can be compared".into()),
        },
        None => Err("empty operand".into()),
    }
}

fn compare(c: &ComparisonExpression, inputs: &LiteralMap) -> Result<bool, String> {
    let left = operand(
        c.left_value
            .as_ref()
            .ok_or("comparison without left operand")?,
        inputs,
    )?;
    let right = operand(
        c.right_value
            .as_ref()
            .ok_or("comparison without right operand")?,
        inputs,
    )?;
    let op = c.operator();
    let ordering = match (left, right) {
        (Value::None, Value::None) => Some(std::cmp::Ordering::Equal),
        (Value::None, _) | (_, Value::None) => None,
        (Value::Primitive(a), Value::Primitive(b)) => Some(
            compare_primitives(a, b).ok_or_else(|| format!("cannot compare {a:?} with {b:?}"))?,
        ),
    };
    use std::cmp::Ordering::*;
    Ok(match (op, ordering) {
        (Operator::Eq, o) => o == Some(Equal),
        (Operator::Neq, o) => o != Some(Equal),
        (_, None) => return Err("None can only be compared with == or !=".into()),
        (Operator::Gt, Some(o)) => o == Greater,
        (Operator::Gte, Some(o)) => o != Less,
        (Operator::Lt, Some(o)) => o == Less,
        (Operator::Lte, Some(o)) => o != Greater,
    })
}
