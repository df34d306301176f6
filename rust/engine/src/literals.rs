//! Small constructors and accessors for literals, used when resolving bindings, evaluating
//! branch conditions and assembling array-node outputs.

use std::cmp::Ordering;

use alula_idl::flyteidl::core::{
    literal, primitive, promise_attribute, scalar, Literal, LiteralCollection, LiteralMap,
    Primitive, PromiseAttribute, Scalar, Void,
};

pub fn scalar(value: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(value),
        }))),
        ..Default::default()
    }
}

pub fn scalar_literal(value: Scalar) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(value))),
        ..Default::default()
    }
}

pub fn primitive(value: primitive::Value) -> Literal {
    scalar(scalar::Value::Primitive(Primitive { value: Some(value) }))
}

/// The literal of `None` (what failed elements of a partially successful map contribute).
pub fn none() -> Literal {
    scalar(scalar::Value::NoneType(Void {}))
}

pub fn collection(literals: Vec<Literal>) -> Literal {
    Literal {
        value: Some(literal::Value::Collection(LiteralCollection { literals })),
        ..Default::default()
    }
}

pub fn map(literals: std::collections::BTreeMap<String, Literal>) -> Literal {
    Literal {
        value: Some(literal::Value::Map(LiteralMap { literals })),
        ..Default::default()
    }
}

/// The elements of a collection literal, if it is one.
pub fn as_collection(lit: &Literal) -> Option<&[Literal]> {
    match &lit.value {
        Some(literal::Value::Collection(c)) => Some(&c.literals),
        _ => None,
    }
}

/// The scalar value of a literal, if it is a scalar.
pub fn as_scalar(lit: &Literal) -> Option<&scalar::Value> {
    match &lit.value {
        Some(literal::Value::Scalar(s)) => s.value.as_ref(),
        _ => None,
    }
}

/// The primitive inside a literal, looking through a union wrapper.
pub fn as_primitive(lit: &Literal) -> Option<&primitive::Value> {
    match as_scalar(lit)? {
        scalar::Value::Primitive(p) => p.value.as_ref(),
        scalar::Value::Union(u) => u.value.as_deref().and_then(as_primitive),
        _ => None,
    }
}

/// True for `None` (also inside a union).
pub fn is_none(lit: &Literal) -> bool {
    match as_scalar(lit) {
        Some(scalar::Value::NoneType(_)) => true,
        Some(scalar::Value::Union(u)) => u.value.as_deref().is_some_and(is_none),
        _ => false,
    }
}

/// Orders two primitives of compatible kinds (integers and floats compare numerically).
pub fn compare_primitives(a: &primitive::Value, b: &primitive::Value) -> Option<Ordering> {
    use primitive::Value as P;
    match (a, b) {
        (P::Integer(x), P::Integer(y)) => Some(x.cmp(y)),
        (P::FloatValue(x), P::FloatValue(y)) => x.partial_cmp(y),
        (P::Integer(x), P::FloatValue(y)) => (*x as f64).partial_cmp(y),
        (P::FloatValue(x), P::Integer(y)) => x.partial_cmp(&(*y as f64)),
        (P::StringValue(x), P::StringValue(y)) => Some(x.cmp(y)),
        (P::Boolean(x), P::Boolean(y)) => Some(x.cmp(y)),
        (P::Datetime(x), P::Datetime(y)) => Some((x.seconds, x.nanos).cmp(&(y.seconds, y.nanos))),
        (P::Duration(x), P::Duration(y)) => Some((x.seconds, x.nanos).cmp(&(y.seconds, y.nanos))),
        _ => None,
    }
}

/// Follows a promise's attribute path (`o0[1]["key"]`) into collections and maps.
pub fn select_path(lit: &Literal, path: &[PromiseAttribute]) -> Result<Literal, String> {
    let mut current = lit;
    for step in path {
        current = match (&current.value, &step.value) {
            (Some(literal::Value::Collection(c)), Some(promise_attribute::Value::IntValue(i))) => {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| c.literals.get(i))
                    .ok_or_else(|| format!("index {i} is out of range for a list of {}", c.literals.len()))?
            }
            (Some(literal::Value::Map(m)), Some(promise_attribute::Value::StringValue(k))) => m
                .literals
                .get(k)
                .ok_or_else(|| format!("key {k:?} is not in the map"))?,
            (_, step) => {
                return Err(format!(
                    "cannot follow attribute {step:?} into this value (only list indices and map keys are supported)"
                ))
            }
        };
    }
    Ok(current.clone())
}
