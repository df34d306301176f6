//! Says where two versions of a registered entity differ, so "already registered with a
//! different definition" comes with the paths that changed (`template.container.image: was
//! "a:1", now "a:2"`). Compares the proto3 JSON forms, so paths use the JSON field names users
//! see in `pyflyte` output and the console.

use serde::Serialize;
use serde_json::Value;

/// At most this many differences are listed; one is usually enough to spot the change.
const MAX_DIFFERENCES: usize = 5;
const MAX_VALUE_CHARS: usize = 200;

/// Human-readable differences between `old` and `new`, at most [`MAX_DIFFERENCES`].
pub fn describe_differences<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk("", &old, &new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if out.len() >= MAX_DIFFERENCES || old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let child = join(path, k);
                walk(
                    &child,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ => out.push(format!(
            "{}: was {}, now {}",
            if path.is_empty() { "<root>" } else { path },
            short(old),
            short(new)
        )),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => return "unset".to_string(),
        other => other.to_string(),
    };
    if s.chars().count() <= MAX_VALUE_CHARS {
        s
    } else {
        let cut: String = s.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_changed_added_and_removed_paths() {
        let old = json!({"template": {"container": {"image": "a:1", "args": ["x", "y"]}, "k": 1}});
        let new = json!({"template": {"container": {"image": "a:2", "args": ["x", "z"]}, "j": 2}});
        let d = describe_differences(&old, &new);
        assert_eq!(
            d,
            vec![
                "template.container.args[1]: was \"y\", now \"z\"",
                "template.container.image: was \"a:1\", now \"a:2\"",
                "template.j: was unset, now 2",
                "template.k: was 1, now unset",
            ]
        );
        assert!(describe_differences(&old, &old).is_empty());
    }
}
