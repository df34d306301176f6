//! Resolving a node's input bindings into a literal map: constants, upstream outputs
//! (promises, with attribute paths), and collections or maps of these.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::{
    binding_data, literal, scalar, Binding, BindingData, Literal, LiteralMap, Union,
};

use crate::literals;
use crate::EngineError;

/// Where upstream values come from: `(node_id, var) -> literal`; `start-node` means the
/// scope's inputs.
pub trait Outputs {
    fn output(&self, node_id: &str, var: &str) -> Option<&Literal>;
}

pub fn resolve(
    node_id: &str,
    bindings: &[Binding],
    outputs: &impl Outputs,
) -> Result<LiteralMap, EngineError> {
    let mut literals = BTreeMap::new();
    for b in bindings {
        let data = b
            .binding
            .as_ref()
            .ok_or_else(|| binding_error(node_id, &b.var, "the binding is empty".into()))?;
        let value = resolve_data(data, outputs).map_err(|m| binding_error(node_id, &b.var, m))?;
        literals.insert(b.var.clone(), value);
    }
    Ok(LiteralMap { literals })
}

fn binding_error(node: &str, var: &str, message: String) -> EngineError {
    EngineError::Binding {
        node: node.to_string(),
        var: var.to_string(),
        message,
    }
}

fn resolve_data(data: &BindingData, outputs: &impl Outputs) -> Result<Literal, String> {
    let value = match &data.value {
        Some(binding_data::Value::Scalar(s)) => literals::scalar_literal(s.clone()),
        Some(binding_data::Value::Promise(p)) => {
            let lit = outputs
                .output(&p.node_id, &p.var)
                .ok_or_else(|| format!("node {:?} produced no output {:?}", p.node_id, p.var))?;
            if p.attr_path.is_empty() {
                lit.clone()
            } else {
                literals::select_path(lit, &p.attr_path)?
            }
        }
        Some(binding_data::Value::Collection(c)) => literals::collection(
            c.bindings
                .iter()
                .map(|b| resolve_data(b, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Some(binding_data::Value::Map(m)) => literals::map(
            m.bindings
                .iter()
                .map(|(k, b)| Ok((k.clone(), resolve_data(b, outputs)?)))
                .collect::<Result<_, String>>()?,
        ),
        Some(binding_data::Value::OffloadedMetadata(o)) => Literal {
            value: Some(literal::Value::OffloadedMetadata(o.clone())),
            ..Default::default()
        },
        None => return Err("the binding has no value".into()),
    };
    // A value bound to a union input travels wrapped with the variant type chosen at compile time.
    Ok(match &data.union {
        Some(info) if !is_union(&value) => {
            literals::scalar(scalar::Value::Union(Box::new(Union {
                value: Some(Box::new(value)),
                r#type: info.target_type.clone(),
            })))
        }
        _ => value,
    })
}

fn is_union(lit: &Literal) -> bool {
    matches!(literals::as_scalar(lit), Some(scalar::Value::Union(_)))
}
