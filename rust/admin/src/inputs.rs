//! Resolves the inputs of a new execution against what its launch plan expects: unknown names,
//! missing required inputs, overridden fixed inputs and ill-typed values are refused; defaults
//! fill what the caller left out. Also validates a launch plan's own defaults and fixed inputs
//! against its workflow's interface.

use std::collections::BTreeMap;

use alula_core::types::{are_types_castable, display_type, literal_type_of};
use alula_idl::flyteidl::core::{
    literal, literal_type, parameter, scalar, Literal, LiteralMap, LiteralType, Parameter,
    ParameterMap, SimpleType, VariableMap,
};

use alula_storage::Storage;

use crate::error::{AdminError, AdminResult};

/// True when `value` may be passed where `expected` is declared.
///
/// When no type can be inferred from the value (an empty blob, say) it is accepted, as the task
/// itself will reject what it cannot read; refusing would block values flytekit sends.
pub fn literal_fits(value: &Literal, expected: &LiteralType) -> bool {
    // flytekit sends dataclasses, dicts and pydantic models as msgpack `Binary` where the
    // interface declares a STRUCT.
    if let Some(literal::Value::Scalar(s)) = &value.value {
        if matches!(s.value, Some(scalar::Value::Binary(_)))
            && matches!(expected.r#type, Some(literal_type::Type::Simple(t)) if t == SimpleType::Struct as i32)
        {
            return true;
        }
    }
    // Collections and maps fit element by element, as FlyteAdmin's IsInstance checks them: the
    // type inferred for the whole (a union of the elements' types, `List[none]` for an empty
    // inner list) says less than each element does. An empty one fits any collection (map)
    // type.
    match (&value.value, &expected.r#type) {
        (
            Some(literal::Value::Collection(c)),
            Some(literal_type::Type::CollectionType(element)),
        ) => {
            return c.literals.iter().all(|l| literal_fits(l, element));
        }
        (Some(literal::Value::Map(m)), Some(literal_type::Type::MapValueType(element))) => {
            return m.literals.values().all(|l| literal_fits(l, element));
        }
        // An untagged value where a union is declared fits when it fits one variant.
        (
            Some(literal::Value::Collection(_) | literal::Value::Map(_)),
            Some(literal_type::Type::UnionType(u)),
        ) if u.variants.iter().any(|v| literal_fits(value, v)) => {
            return true;
        }
        _ => {}
    }
    match literal_type_of(value) {
        Some(actual) => are_types_castable(&actual, expected),
        None => true,
    }
}

fn describe(value: &Literal) -> String {
    literal_type_of(value).map_or_else(|| "an untyped value".to_string(), |t| display_type(&t))
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// `map` with the `file://` URIs of objects in a local `storage` (what `CreateUploadLocation`
/// hands out, so what `pyflyte run --remote` puts in a FlyteFile input) given as the plain paths
/// tasks see for every other object: flytekit reads a `file://` FlyteFile as neither remote nor
/// an existing local file and refuses it.
pub fn plain_local_uris(storage: &Storage, map: &mut LiteralMap) {
    if storage.local_root().is_none() {
        return;
    }
    for value in map.literals.values_mut() {
        plain_uris_of(storage, value);
    }
}

fn plain_uris_of(storage: &Storage, value: &mut Literal) {
    let plain = |uri: &mut String| {
        if uri.starts_with("file://") {
            if let Some(key) = storage.key_of(uri) {
                *uri = storage.uri(&key);
            }
        }
    };
    match &mut value.value {
        Some(literal::Value::Scalar(scalar)) => match &mut scalar.value {
            Some(scalar::Value::Blob(blob)) => plain(&mut blob.uri),
            Some(scalar::Value::Schema(schema)) => plain(&mut schema.uri),
            Some(scalar::Value::StructuredDataset(dataset)) => plain(&mut dataset.uri),
            Some(scalar::Value::Union(union)) => {
                if let Some(inner) = union.value.as_deref_mut() {
                    plain_uris_of(storage, inner);
                }
            }
            _ => {}
        },
        Some(literal::Value::Collection(collection)) => {
            for item in &mut collection.literals {
                plain_uris_of(storage, item);
            }
        }
        Some(literal::Value::Map(map)) => {
            for item in map.literals.values_mut() {
                plain_uris_of(storage, item);
            }
        }
        _ => {}
    }
}

/// The inputs an execution runs with: `user` inputs checked against `expected`, defaults for
/// those left out, and `fixed` inputs, which the caller may not override. Every problem is
/// reported at once.
pub fn resolve_inputs(
    user: &LiteralMap,
    expected: &ParameterMap,
    fixed: &LiteralMap,
) -> AdminResult<LiteralMap> {
    let mut problems = Vec::new();
    let mut resolved: BTreeMap<String, Literal> = BTreeMap::new();
    for (name, value) in &user.literals {
        if fixed.literals.contains_key(name) {
            problems.push(format!(
                "input {name:?} is fixed by the launch plan and cannot be overridden"
            ));
            continue;
        }
        let Some(param) = expected.parameters.get(name) else {
            problems.push(format!(
                "unknown input {name:?}; expected inputs: {}",
                names(expected.parameters.keys())
            ));
            continue;
        };
        if let Some(ty) = param.var.as_ref().and_then(|v| v.r#type.as_ref()) {
            if !literal_fits(value, ty) {
                problems.push(format!(
                    "input {name:?} expects {} but got {}",
                    display_type(ty),
                    describe(value)
                ));
                continue;
            }
        }
        resolved.insert(name.clone(), value.clone());
    }
    for (name, param) in &expected.parameters {
        if user.literals.contains_key(name) {
            continue;
        }
        match &param.behavior {
            Some(parameter::Behavior::Default(default)) => {
                resolved.insert(name.clone(), default.clone());
            }
            Some(parameter::Behavior::Required(true)) => {
                problems.push(format!("required input {name:?} is missing"));
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::invalid(format!(
            "invalid execution inputs: {}",
            problems.join("; ")
        )));
    }
    resolved.extend(fixed.literals.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(LiteralMap { literals: resolved })
}

/// Checks a launch plan's `default_inputs` and `fixed_inputs` against its workflow's inputs
/// and returns `closure.expected_inputs`: the workflow's inputs that are not fixed, each with
/// the launch plan's default when it has one and required otherwise.
pub fn launch_plan_expected_inputs(
    workflow_inputs: &VariableMap,
    defaults: &ParameterMap,
    fixed: &LiteralMap,
) -> AdminResult<ParameterMap> {
    let mut problems = Vec::new();
    let known = || names(workflow_inputs.variables.keys());
    for (name, param) in &defaults.parameters {
        let Some(var) = workflow_inputs.variables.get(name) else {
            problems.push(format!(
                "default input {name:?} is not an input of the workflow; workflow inputs: {}",
                known()
            ));
            continue;
        };
        let (Some(declared), Some(wanted)) = (
            param.var.as_ref().and_then(|v| v.r#type.as_ref()),
            var.r#type.as_ref(),
        ) else {
            continue;
        };
        if !are_types_castable(declared, wanted) {
            problems.push(format!(
                "default input {name:?} is declared as {} but the workflow expects {}",
                display_type(declared),
                display_type(wanted)
            ));
        }
        if let Some(parameter::Behavior::Default(value)) = &param.behavior {
            if !literal_fits(value, wanted) {
                problems.push(format!(
                    "default value of input {name:?} is {} but the workflow expects {}",
                    describe(value),
                    display_type(wanted)
                ));
            }
        }
    }
    for (name, value) in &fixed.literals {
        match workflow_inputs
            .variables
            .get(name)
            .and_then(|v| v.r#type.as_ref())
        {
            None => problems.push(format!(
                "fixed input {name:?} is not an input of the workflow; workflow inputs: {}",
                known()
            )),
            Some(wanted) if !literal_fits(value, wanted) => problems.push(format!(
                "fixed input {name:?} is {} but the workflow expects {}",
                describe(value),
                display_type(wanted)
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(AdminError::invalid(format!(
            "invalid launch plan inputs: {}",
            problems.join("; ")
        )));
    }
    let parameters = workflow_inputs
        .variables
        .iter()
        .filter(|(name, _)| !fixed.literals.contains_key(*name))
        .map(|(name, var)| {
            let param = defaults.parameters.get(name).cloned().unwrap_or(Parameter {
                var: Some(var.clone()),
                behavior: Some(parameter::Behavior::Required(true)),
            });
            (name.clone(), param)
        })
        .collect();
    Ok(ParameterMap { parameters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::core::{primitive, Primitive, Scalar, Variable};

    fn int_type() -> LiteralType {
        alula_core::types::simple(SimpleType::Integer)
    }

    fn int(i: i64) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(i)),
                })),
            }))),
            ..Default::default()
        }
    }

    fn string(s: &str) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::StringValue(s.into())),
                })),
            }))),
            ..Default::default()
        }
    }

    fn param(default: Option<Literal>) -> Parameter {
        Parameter {
            var: Some(Variable {
                r#type: Some(int_type()),
                ..Default::default()
            }),
            behavior: Some(match default {
                Some(d) => parameter::Behavior::Default(d),
                None => parameter::Behavior::Required(true),
            }),
        }
    }

    fn map(entries: &[(&str, Literal)]) -> LiteralMap {
        LiteralMap {
            literals: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn empty_collections_fit_any_collection_type() {
        use alula_idl::flyteidl::core::LiteralCollection;
        let list_of = |t: LiteralType| LiteralType {
            r#type: Some(literal_type::Type::CollectionType(Box::new(t))),
            ..Default::default()
        };
        let collection = |items: Vec<Literal>| Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: items,
            })),
            ..Default::default()
        };
        assert!(literal_fits(&collection(vec![]), &list_of(int_type())));
        assert!(literal_fits(
            &collection(vec![int(1)]),
            &list_of(int_type())
        ));
        assert!(!literal_fits(
            &collection(vec![string("x")]),
            &list_of(int_type())
        ));
        // Empty is still not an integer.
        assert!(!literal_fits(&collection(vec![]), &int_type()));
    }

    /// What flytekit (and the console's launch form) send for `List[Union[int, str]]` and
    /// `List[List[int]]`: each element fits, so the list does, however the elements' inferred
    /// types combine (`[Union[int], Union[str]]` is no union of the declared one; an empty inner
    /// list infers as `List[none]`).
    #[test]
    fn collections_fit_element_by_element() {
        use alula_idl::flyteidl::core::{LiteralCollection, Union as UnionValue, UnionType};
        let list_of = |t: LiteralType| LiteralType {
            r#type: Some(literal_type::Type::CollectionType(Box::new(t))),
            ..Default::default()
        };
        let collection = |items: Vec<Literal>| Literal {
            value: Some(literal::Value::Collection(LiteralCollection {
                literals: items,
            })),
            ..Default::default()
        };
        let string_type = alula_core::types::simple(SimpleType::String);
        let int_or_str = LiteralType {
            r#type: Some(literal_type::Type::UnionType(UnionType {
                variants: vec![int_type(), string_type.clone()],
            })),
            ..Default::default()
        };
        let tagged = |value: Literal, tag: &LiteralType| Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Union(Box::new(UnionValue {
                    value: Some(Box::new(value)),
                    r#type: Some(tag.clone()),
                }))),
            }))),
            ..Default::default()
        };
        let mixed = collection(vec![
            tagged(int(1), &int_type()),
            tagged(string("a"), &string_type),
        ]);
        assert!(literal_fits(&mixed, &list_of(int_or_str.clone())));
        assert!(literal_fits(
            &collection(vec![int(1), string("a")]),
            &list_of(int_or_str)
        ));
        assert!(!literal_fits(&mixed, &list_of(int_type())));

        let nested = list_of(list_of(int_type()));
        assert!(literal_fits(&collection(vec![collection(vec![])]), &nested));
        assert!(literal_fits(
            &collection(vec![collection(vec![]), collection(vec![int(2)])]),
            &nested
        ));
        assert!(!literal_fits(
            &collection(vec![collection(vec![string("x")])]),
            &nested
        ));
    }

    #[test]
    fn fills_defaults_and_fixed_inputs() {
        let expected = ParameterMap {
            parameters: [
                ("a".to_string(), param(None)),
                ("b".to_string(), param(Some(int(7)))),
            ]
            .into(),
        };
        let got =
            resolve_inputs(&map(&[("a", int(1))]), &expected, &map(&[("c", int(3))])).unwrap();
        assert_eq!(got, map(&[("a", int(1)), ("b", int(7)), ("c", int(3))]));
    }

    #[test]
    fn reports_every_problem() {
        let expected = ParameterMap {
            parameters: [
                ("a".to_string(), param(None)),
                ("b".to_string(), param(None)),
            ]
            .into(),
        };
        let err = resolve_inputs(
            &map(&[("a", string("x")), ("z", int(1)), ("c", int(2))]),
            &expected,
            &map(&[("c", int(3))]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("input \"a\" expects"), "{err}");
        assert!(err.contains("unknown input \"z\""), "{err}");
        assert!(err.contains("required input \"b\" is missing"), "{err}");
        assert!(err.contains("\"c\" is fixed"), "{err}");
    }

    #[test]
    fn file_uris_of_local_objects_become_plain_paths() {
        use alula_idl::flyteidl::core::{Blob, LiteralCollection};
        let blob = |uri: &str| Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Blob(Blob {
                    metadata: None,
                    uri: uri.into(),
                })),
            }))),
            ..Default::default()
        };
        let uploaded = "file:///data/uploads/p/d/AB==/data.txt";
        let mut map = LiteralMap {
            literals: [
                ("f".to_string(), blob(uploaded)),
                ("elsewhere".to_string(), blob("file:///home/me/x.txt")),
                ("remote".to_string(), blob("s3://bucket/x")),
                (
                    "files".to_string(),
                    Literal {
                        value: Some(literal::Value::Collection(LiteralCollection {
                            literals: vec![blob(uploaded)],
                        })),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
        };
        let unchanged = map.clone();
        plain_local_uris(&Storage::memory(), &mut map);
        assert_eq!(map, unchanged);
        plain_local_uris(&Storage::local("/data"), &mut map);
        let plain = blob("/data/uploads/p/d/AB==/data.txt");
        assert_eq!(map.literals["f"], plain);
        assert_eq!(map.literals["elsewhere"], unchanged.literals["elsewhere"]);
        assert_eq!(map.literals["remote"], unchanged.literals["remote"]);
        let Some(literal::Value::Collection(files)) = &map.literals["files"].value else {
            panic!("a collection");
        };
        assert_eq!(files.literals, vec![plain]);
    }
}
