//! Cache keys of task outputs, the same for local runs and the remote cache.
//!
//! As in Flyte's datacatalog, a cached output belongs to a *dataset* named after the task
//! (`flyte_task-<task name>`) whose version joins the task's `cache_version` with a digest of
//! its interface — so changing a type invalidates the cache, while a new task *version* does
//! not — and is tagged by a digest of the inputs. Inputs carrying a `hash` (set through
//! `HashMethod`) contribute that hash instead of their value, and `cache_ignore_input_vars`
//! are left out.

use std::collections::BTreeMap;

use alula_idl::flyteidl::core::{Literal, LiteralMap, TaskTemplate};
use prost::Message;
use sha2::{Digest, Sha256};

/// Where a cached output lives and under which tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub dataset_name: String,
    pub dataset_version: String,
    pub tag: String,
}

impl CacheKey {
    /// One file-system-safe string for local storage.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(format!(
            "{}\n{}\n{}",
            self.dataset_name, self.dataset_version, self.tag
        )))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of `task`'s outputs for `inputs`, or `None` when the task is not cacheable.
pub fn cache_key(task: &TaskTemplate, inputs: &LiteralMap) -> Option<CacheKey> {
    let metadata = task.metadata.as_ref().filter(|m| m.discoverable)?;
    let name = task
        .id
        .as_ref()
        .map(|id| id.name.as_str())
        .unwrap_or_default();
    let interface = task.interface.clone().unwrap_or_default().encode_to_vec();
    let interface_digest = &hex(&Sha256::digest(interface))[..16];
    let ignored = &metadata.cache_ignore_input_vars;
    let hashed: BTreeMap<String, Literal> = inputs
        .literals
        .iter()
        .filter(|(name, _)| !ignored.contains(name))
        .map(|(name, lit)| (name.clone(), hashed_literal(lit)))
        .collect();
    // Maps are sorted (BTreeMap), so the encoding, and the digest, are deterministic.
    let input_digest = hex(&Sha256::digest(
        LiteralMap { literals: hashed }.encode_to_vec(),
    ));
    Some(CacheKey {
        dataset_name: format!("flyte_task-{name}"),
        dataset_version: format!("{}-{interface_digest}", metadata.discovery_version),
        tag: format!("flyte_cached-{input_digest}"),
    })
}

/// A literal reduced to what identifies it for caching: its `hash` when it has one.
fn hashed_literal(lit: &Literal) -> Literal {
    if !lit.hash.is_empty() {
        return Literal {
            hash: lit.hash.clone(),
            ..Default::default()
        };
    }
    use alula_idl::flyteidl::core::literal::Value;
    let value = match &lit.value {
        Some(Value::Collection(c)) => Some(Value::Collection(
            alula_idl::flyteidl::core::LiteralCollection {
                literals: c.literals.iter().map(hashed_literal).collect(),
            },
        )),
        Some(Value::Map(m)) => Some(Value::Map(LiteralMap {
            literals: m
                .literals
                .iter()
                .map(|(k, v)| (k.clone(), hashed_literal(v)))
                .collect(),
        })),
        other => other.clone(),
    };
    Literal {
        value,
        metadata: Default::default(),
        hash: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::core::{
        literal, primitive, scalar, Identifier, Primitive, Scalar, TaskMetadata, TypedInterface,
    };

    fn int(v: i64) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(v)),
                })),
            }))),
            ..Default::default()
        }
    }

    fn task(cacheable: bool, version: &str, ignore: &[&str]) -> TaskTemplate {
        TaskTemplate {
            id: Some(Identifier {
                name: "wf.square".into(),
                version: "v1".into(),
                ..Default::default()
            }),
            metadata: Some(TaskMetadata {
                discoverable: cacheable,
                discovery_version: version.into(),
                cache_ignore_input_vars: ignore.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            interface: Some(TypedInterface::default()),
            ..Default::default()
        }
    }

    fn inputs(pairs: &[(&str, Literal)]) -> LiteralMap {
        LiteralMap {
            literals: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn keys_follow_cache_version_and_inputs_but_not_task_version() {
        let t = task(true, "1.0", &[]);
        let a = cache_key(&t, &inputs(&[("x", int(1))])).unwrap();
        assert_eq!(a.dataset_name, "flyte_task-wf.square");
        assert!(a.dataset_version.starts_with("1.0-"));
        assert!(a.tag.starts_with("flyte_cached-"));
        assert_eq!(Some(a.clone()), cache_key(&t, &inputs(&[("x", int(1))])));
        assert_ne!(Some(a.clone()), cache_key(&t, &inputs(&[("x", int(2))])));
        assert_ne!(
            Some(a.clone()),
            cache_key(&task(true, "2.0", &[]), &inputs(&[("x", int(1))]))
        );
        let mut other_version = t.clone();
        other_version.id.as_mut().unwrap().version = "v2".into();
        assert_eq!(
            Some(a),
            cache_key(&other_version, &inputs(&[("x", int(1))]))
        );
        assert_eq!(cache_key(&task(false, "1.0", &[]), &inputs(&[])), None);
    }

    #[test]
    fn hashes_replace_values_and_ignored_inputs_drop_out() {
        let t = task(true, "1", &["seed"]);
        let mut a = int(1);
        a.hash = "h".into();
        let mut b = int(2);
        b.hash = "h".into();
        assert_eq!(
            cache_key(&t, &inputs(&[("df", a)])),
            cache_key(&t, &inputs(&[("df", b)]))
        );
        assert_eq!(
            cache_key(&t, &inputs(&[("x", int(1)), ("seed", int(7))])),
            cache_key(&t, &inputs(&[("x", int(1)), ("seed", int(8))]))
        );
    }
}
