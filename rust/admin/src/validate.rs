//! The rules for names clients choose: identifier parts (project, domain, name, version,
//! execution name) and the relative paths of uploads. Every request handler checks through
//! here, so a value refused in one RPC is refused in all, with INVALID_ARGUMENT naming the field.
//!
//! They follow flyteadmin's where it has one: projects are DNS-1123 labels (its
//! `ValidateProject`), versions are URL-safe (its `ValidateVersion`: what `url.QueryEscape` leaves
//! alone), execution names are DNS-1123 labels starting with a letter. flyteadmin leaves entity
//! names free-form; flytekit's are dotted Python paths (`workflows.example.wf`) or names users
//! give container and reference tasks, so names refuse only what no such name holds and what
//! would break a path, a REST URL or a log line: `/`, `\`, control characters, line breaks,
//! `.`/`..`, and more than 255 bytes.

use crate::error::{quote, AdminError, AdminResult};

/// DNS-1123 labels, as Kubernetes namespaces (`<project>-<domain>`) and object names need.
const MAX_LABEL_BYTES: usize = 63;
/// Names and versions: what fits a database index and a file name.
pub const MAX_NAME_BYTES: usize = 255;
/// One segment of an upload path (a file name): what file systems take.
const MAX_SEGMENT_BYTES: usize = 255;
/// A whole upload path (`filename_root` and `filename` each).
const MAX_PATH_BYTES: usize = 1024;

fn invalid(field: &str, value: &str, rule: &str) -> AdminError {
    AdminError::invalid(format!("{field} {} is invalid: {rule}", quote(value)))
}

fn require(value: &str, field: &str) -> AdminResult<()> {
    if value.is_empty() {
        Err(AdminError::invalid(format!("missing {field}")))
    } else {
        Ok(())
    }
}

fn is_dns_label(value: &str) -> bool {
    value.len() <= MAX_LABEL_BYTES
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A project id: a DNS-1123 label.
pub fn project(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "use at most 63 lowercase letters, digits and '-', not starting or ending with '-'",
        ))
    }
}

/// A domain id: a DNS-1123 label, like the project it joins in namespace names.
pub fn domain(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "use at most 63 lowercase letters, digits and '-', not starting or ending with '-'",
        ))
    }
}

/// Characters no name or path segment may hold: control characters (NUL included) and line
/// breaks or tabs of any kind. A plain space is allowed (users name container tasks freely).
fn is_unprintable(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ')
}

/// A task, workflow or launch plan name (also of named entities).
pub fn name(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    let rule = if value.len() > MAX_NAME_BYTES {
        Some("longer than 255 bytes")
    } else if value == "." || value == ".." {
        Some("'.' and '..' are not names")
    } else if value.contains(['/', '\\']) {
        Some("'/' and '\\' are not allowed")
    } else if value.contains(is_unprintable) {
        Some("control characters, tabs and line breaks are not allowed")
    } else {
        None
    };
    rule.map_or(Ok(()), |rule| Err(invalid(field, value, rule)))
}

/// A version: URL-safe characters (flyteadmin's rule) plus `=`, which base64 digests end in.
pub fn version(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    let url_safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '='));
    if value.len() > MAX_NAME_BYTES {
        Err(invalid(field, value, "longer than 255 bytes"))
    } else if !url_safe || value == "." || value == ".." {
        Err(invalid(
            field,
            value,
            "use letters, digits and '-', '_', '.', '~', '='",
        ))
    } else {
        Ok(())
    }
}

/// An execution name: it names Kubernetes objects, so a DNS-1123 label starting with a letter.
pub fn execution_name(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    if is_dns_label(value) && value.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "use at most 63 lowercase letters, digits and '-', starting with a letter and not ending with '-'",
        ))
    }
}

/// A relative path inside the storage (an upload's `filename_root` or `filename`): segments
/// separated by `/`, none empty, `.` or `..`, no `\`, control characters or line breaks. So a
/// key built from it never leaves the prefix it is put under, on any operating system.
pub fn relative_path(value: &str, field: &str) -> AdminResult<()> {
    require(value, field)?;
    if value.len() > MAX_PATH_BYTES {
        return Err(invalid(field, value, "longer than 1024 bytes"));
    }
    for segment in value.split('/') {
        let rule = if segment.is_empty() {
            Some("a relative path without empty segments (no leading, trailing or double '/')")
        } else if segment == "." || segment == ".." {
            Some("'.' and '..' segments are not allowed")
        } else if segment.len() > MAX_SEGMENT_BYTES {
            Some("a segment is longer than 255 bytes")
        } else if segment.contains('\\') {
            Some("'\\' is not allowed")
        } else if segment.contains(is_unprintable) {
            Some("control characters, tabs and line breaks are not allowed")
        } else {
            None
        };
        if let Some(rule) = rule {
            return Err(invalid(field, value, rule));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flytekit_values_pass() {
        for n in [
            "workflows.example.wf",
            "flytekit.core.array_node_map_task.mapper_t1_0",
            "my container task",
            "données.wf",
        ] {
            assert!(name(n, "name").is_ok(), "{n}");
        }
        for v in ["v1", "0.1.0", "Ab-_cD12", "dGVzdA==", "e2e-v1", "~x"] {
            assert!(version(v, "version").is_ok(), "{v}");
        }
        for p in [
            "NBSWY3DPEB3W64TMMQQGC3TEEBWW65LO======",
            "sub/dir/my file (1).csv",
        ] {
            assert!(relative_path(p, "filename").is_ok(), "{p}");
        }
    }

    #[test]
    fn escapes_and_oddities_are_refused() {
        for n in ["", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", "a\u{2028}b"] {
            assert!(name(n, "name").is_err(), "{n:?}");
        }
        assert!(name(&"a".repeat(256), "name").is_err());
        for v in ["", "v 1", "v/1", "v+1", "..", "v1\n"] {
            assert!(version(v, "version").is_err(), "{v:?}");
        }
        for p in [
            "", "/abs", "a//b", "a/", "..", "a/../b", "a\\b", "a\0b", "./a",
        ] {
            assert!(relative_path(p, "filename").is_err(), "{p:?}");
        }
        for p in ["", "A", "-a", "a-", "a_b", "a.b", "../a"] {
            assert!(project(p, "project").is_err(), "{p:?}");
        }
        let err = name("a\0b", "task id name").unwrap_err().to_string();
        assert!(
            err.starts_with("task id name \"a\\0b\" is invalid"),
            "{err}"
        );
    }
}
