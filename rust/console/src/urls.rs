//! The console's URLs, built in one place so every link agrees with the routes.

use alula_idl::flyteidl::core::{Identifier, ResourceType, WorkflowExecutionIdentifier};

/// Escapes one path segment or query value (names are validated by admin, but a link must not
/// break on anything the API accepted).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn projects() -> String {
    "/console".to_string()
}

pub fn project(project: &str, domain: &str) -> String {
    format!(
        "/console/projects/{}/domains/{}",
        escape(project),
        escape(domain)
    )
}

pub fn executions(project: &str, domain: &str) -> String {
    format!(
        "/console/projects/{}/domains/{}/executions",
        escape(project),
        escape(domain)
    )
}

pub fn execution(id: &WorkflowExecutionIdentifier) -> String {
    format!(
        "/console/projects/{}/domains/{}/executions/{}",
        escape(&id.project),
        escape(&id.domain),
        escape(&id.name)
    )
}

/// The execution page with one node's panel open.
pub fn node(id: &WorkflowExecutionIdentifier, node_id: &str) -> String {
    format!("{}?node={}", execution(id), escape(node_id))
}

/// Flyte's console name of an entity kind in URLs.
pub fn kind_segment(kind: ResourceType) -> &'static str {
    match kind {
        ResourceType::Task => "tasks",
        ResourceType::Workflow => "workflows",
        ResourceType::LaunchPlan => "launchPlans",
        ResourceType::Dataset | ResourceType::Unspecified => "workflows",
    }
}

/// The list of one kind of entity in a project and domain.
pub fn entities(kind: ResourceType, project: &str, domain: &str) -> String {
    format!("{}/{}", self::project(project, domain), kind_segment(kind))
}

/// An entity (all its versions, the given one selected when `id.version` is set).
pub fn entity(id: &Identifier) -> String {
    let kind = ResourceType::try_from(id.resource_type).unwrap_or(ResourceType::Workflow);
    let base = format!(
        "{}/{}",
        entities(kind, &id.project, &id.domain),
        escape(&id.name)
    );
    if id.version.is_empty() {
        base
    } else {
        format!("{base}/version/{}", escape(&id.version))
    }
}

/// The launch form of a launch plan (its latest version unless `id.version` is set).
pub fn launch(id: &Identifier) -> String {
    let base = format!(
        "{}/launchPlans/{}/launch",
        project(&id.project, &id.domain),
        escape(&id.name)
    );
    if id.version.is_empty() {
        base
    } else {
        format!("{base}?version={}", escape(&id.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_escape_what_paths_cannot_hold() {
        let id = WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "development".into(),
            name: "a b/c".into(),
            org: String::new(),
        };
        assert_eq!(
            execution(&id),
            "/console/projects/p/domains/development/executions/a%20b%2Fc"
        );
        assert_eq!(
            node(&id, "n0-0-n1"),
            "/console/projects/p/domains/development/executions/a%20b%2Fc?node=n0-0-n1"
        );
    }
}
