//! Branch nodes: their cases, the renaming of then-nodes, the interface they expose and the
//! conditions they evaluate.

use alula_core::types::{
    are_types_castable, literal_type_of_primitive, literal_type_of_scalar, TypeDisplay,
};
use alula_idl::flyteidl::core::{
    boolean_expression::Expr, if_else_block, node::Target, operand, BooleanExpression, LiteralType,
    Node, Operand,
};

use crate::errors::ErrorCode;
use crate::graph::EdgeKind;
use crate::names::branch_node_id;
use crate::workflow::{describe_vars, NodeInterface, Vars, WorkflowCompiler};

impl WorkflowCompiler<'_> {
    /// Checks the branch's cases, renames each then-node `<branchId>-<thenId>` and returns the
    /// outputs all cases share (with types castable both ways). Inputs come from the bindings.
    pub(crate) fn branch_interface(&mut self, n: &mut Node) -> Option<NodeInterface> {
        let id = n.id.clone();
        let Some(Target::BranchNode(b)) = &mut n.target else {
            return None;
        };
        let Some(if_else) = b.if_else.as_deref_mut() else {
            self.error(
                ErrorCode::ValueRequired,
                &id,
                format!("branch node [{id}] has no if/else block"),
            );
            return None;
        };
        if if_else.case.is_none() {
            self.error(
                ErrorCode::BranchNodeHasNoCondition,
                &id,
                format!("branch node [{id}] has no if case"),
            );
        }
        let mut thens: Vec<&mut Node> = Vec::new();
        let cases = if_else
            .case
            .as_deref_mut()
            .into_iter()
            .chain(if_else.other.iter_mut());
        for (i, case) in cases.enumerate() {
            let which = if i == 0 {
                "the if case".to_string()
            } else {
                format!("elif case {i}")
            };
            if case.condition.is_none() {
                self.error(
                    ErrorCode::BranchNodeHasNoCondition,
                    &id,
                    format!("{which} of branch node [{id}] has no condition"),
                );
            }
            match case.then_node.as_deref_mut() {
                Some(t) => thens.push(t),
                None => self.error(
                    ErrorCode::BranchNodeIdNotFound,
                    &id,
                    format!(
                        "BranchNode not assigned: {which} of branch node [{id}] has no then node"
                    ),
                ),
            }
        }
        match &mut if_else.default {
            Some(if_else_block::Default::ElseNode(e)) => thens.push(e),
            Some(if_else_block::Default::Error(_)) => {}
            None => self.error(
                ErrorCode::BranchNodeHasNoDefault,
                &id,
                format!("branch node [{id}] has neither an else node nor an error to fail with"),
            ),
        }

        let mut shared: Option<Vars> = None;
        for then in thens {
            then.id = branch_node_id(&id, &then.id);
            let Some(iface) = self.node_interface(then) else {
                continue;
            };
            match &mut shared {
                None => shared = Some(iface.outputs.clone()),
                Some(acc) => {
                    let mut disagreements = Vec::new();
                    acc.retain(|name, t| match iface.outputs.get(name) {
                        Some(other) => {
                            if !(are_types_castable(t, other) && are_types_castable(other, t)) {
                                disagreements.push(format!(
                                    "output [{name}] of then-node [{}] has type [{}] but an earlier case gives [{}]",
                                    then.id,
                                    TypeDisplay(other),
                                    TypeDisplay(t)
                                ));
                            }
                            true
                        }
                        None => false,
                    });
                    for d in disagreements {
                        self.error(ErrorCode::MismatchingTypes, &then.id, d);
                    }
                }
            }
            self.interfaces.insert(then.id.clone(), iface);
        }
        Some(NodeInterface {
            inputs: Vars::new(),
            outputs: shared.unwrap_or_default(),
        })
    }

    /// Validates the conditions of branch `n` and the bindings of its then-nodes, whose data
    /// edges attach to the top-level node `top_id` that contains them.
    pub(crate) fn validate_branch_contents(&mut self, top_id: &str, n: &Node, kind: EdgeKind) {
        let inputs = self.binding_vars(n);
        let Some(Target::BranchNode(b)) = &n.target else {
            return;
        };
        let Some(if_else) = &b.if_else else { return };
        for case in if_else.case.as_deref().into_iter().chain(&if_else.other) {
            if let Some(cond) = &case.condition {
                self.validate_condition(&n.id, cond, &inputs);
            }
            if let Some(then) = &case.then_node {
                self.validate_then_node(top_id, then, kind);
            }
        }
        if let Some(if_else_block::Default::ElseNode(e)) = &if_else.default {
            self.validate_then_node(top_id, e, kind);
        }
    }

    fn validate_then_node(&mut self, top_id: &str, then: &Node, kind: EdgeKind) {
        if matches!(then.target, Some(Target::BranchNode(_))) {
            self.validate_bindings(&then.id, top_id, &then.inputs, None, kind);
            self.validate_branch_contents(top_id, then, kind);
            return;
        }
        let Some(params) = self.interfaces.get(&then.id).map(|i| i.inputs.clone()) else {
            return;
        };
        self.validate_bindings(&then.id, top_id, &then.inputs, Some(&params), kind);
    }

    /// Each operand is a literal or one of the branch's inputs, and both sides of a comparison
    /// must have identical types.
    fn validate_condition(&mut self, branch_id: &str, expr: &BooleanExpression, inputs: &Vars) {
        match &expr.expr {
            None => self.error(
                ErrorCode::ValueRequired,
                branch_id,
                format!("a condition of branch node [{branch_id}] is empty"),
            ),
            Some(Expr::Conjunction(c)) => {
                for side in [&c.left_expression, &c.right_expression] {
                    match side {
                        Some(e) => self.validate_condition(branch_id, e, inputs),
                        None => self.error(
                            ErrorCode::BranchNodeHasNoCondition,
                            branch_id,
                            format!("a conjunction in branch node [{branch_id}] is missing a side"),
                        ),
                    }
                }
            }
            Some(Expr::Comparison(c)) => {
                let left = self.operand_type(branch_id, "left", c.left_value.as_ref(), inputs);
                let right = self.operand_type(branch_id, "right", c.right_value.as_ref(), inputs);
                if let (Some(l), Some(r)) = (left, right) {
                    if l != r {
                        self.error(
                            ErrorCode::MismatchingTypes,
                            branch_id,
                            format!(
                                "a condition of branch node [{branch_id}] compares [{}] with [{}]; both sides must have the same type",
                                TypeDisplay(&l),
                                TypeDisplay(&r)
                            ),
                        );
                    }
                }
            }
        }
    }

    fn operand_type(
        &mut self,
        branch_id: &str,
        side: &str,
        op: Option<&Operand>,
        inputs: &Vars,
    ) -> Option<LiteralType> {
        match op.and_then(|o| o.val.as_ref()) {
            // Deprecated in flyteidl in favour of `scalar`, but flytekit still sends it.
            #[allow(deprecated)]
            Some(operand::Val::Primitive(p)) => literal_type_of_primitive(p),
            Some(operand::Val::Scalar(s)) => literal_type_of_scalar(s),
            Some(operand::Val::Var(v)) => {
                let found = inputs.get(v).cloned();
                if found.is_none() {
                    self.error(
                        ErrorCode::VariableNameNotFound,
                        branch_id,
                        format!(
                            "a condition of branch node [{branch_id}] uses [{v}], which is not an input of the branch; its inputs are {}",
                            describe_vars(inputs)
                        ),
                    );
                }
                found
            }
            None => {
                self.error(
                    ErrorCode::ValueRequired,
                    branch_id,
                    format!(
                        "the {side} operand of a condition in branch node [{branch_id}] is missing"
                    ),
                );
                None
            }
        }
    }
}
