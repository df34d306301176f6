//! The reference interpreter: what a case must end with.

use super::*;

#[derive(Debug, PartialEq)]
pub(super) enum Expected {
    Succeeded(BTreeMap<String, Value>),
    /// Failed, with the nodes whose failure may be the one reported, and whether one of them
    /// may have failed by its timeout.
    Failed {
        nodes: Vec<String>,
        timeout: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    Int(i64),
    List(Vec<Option<i64>>),
}

pub(super) fn reference(case: &Case) -> Expected {
    let mut values: Vec<Option<i64>> = vec![None; case.nodes.len()];
    let mut outputs = BTreeMap::new();
    let mut failed = Vec::new();
    let mut timeout = false;
    // `None`: the source never ran (it or one of its own sources failed).
    let get = |values: &[Option<i64>], src: Src| match src {
        Src::Input => Some(case.x),
        Src::Node(j) => values[j],
        Src::Const(c) => Some(c),
    };
    let mut ran = vec![false; case.nodes.len()];
    for (i, kind) in case.nodes.iter().enumerate() {
        if case.after[i].iter().any(|&j| !ran[j]) {
            continue;
        }
        let value = match kind {
            Kind::Task { x, y, script, .. } => {
                let (Some(x), Some(y)) = (get(&values, *x), get(&values, *y)) else {
                    continue;
                };
                if script.contains(&Step::Ok) {
                    Value::Int(x + y)
                } else {
                    timeout |= script.contains(&Step::Hang);
                    failed.push(id(i));
                    continue;
                }
            }
            Kind::Branch { x, c } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(if x > 0 { x + c } else { x + 1 })
            }
            Kind::Sub { x, len } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(x + *len as i64)
            }
            Kind::Map { ratio, .. } => {
                let size = case.xs.len();
                let min = match ratio {
                    Some(r) => ((f64::from(*r) * size as f64).ceil() as usize).min(size),
                    None => size,
                };
                let ok = case.xs.iter().filter(|&&x| x >= 0).count();
                if ok < min {
                    failed.push(id(i));
                    continue;
                }
                Value::List(case.xs.iter().map(|&x| (x >= 0).then_some(x * 2)).collect())
            }
            Kind::Dynamic { x, width } => {
                let Some(x) = get(&values, *x) else { continue };
                Value::Int(x + i64::from(*width > 0))
            }
            Kind::Sleep { .. } | Kind::Approve => {
                ran[i] = true;
                continue;
            }
        };
        ran[i] = true;
        if let Value::Int(v) = value {
            values[i] = Some(v);
        }
        outputs.insert(format!("o{i}"), value);
    }
    // A failed node's dependents never run, and the first failure fails the workflow: any
    // failed node that was reachable may be the one reported.
    if failed.is_empty() {
        Expected::Succeeded(outputs)
    } else {
        Expected::Failed {
            nodes: failed,
            timeout,
        }
    }
}

pub(super) fn value_of(l: &Literal) -> Value {
    match alula_engine::literals::as_collection(l) {
        Some(items) => Value::List(
            items
                .iter()
                .map(|i| (!alula_engine::literals::is_none(i)).then(|| as_int(i)))
                .collect(),
        ),
        None => Value::Int(as_int(l)),
    }
}
