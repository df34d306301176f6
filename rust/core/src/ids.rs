//! Identifier helpers.

use std::fmt;

use alula_idl::flyteidl::core::Identifier;

/// Renders an identifier for humans, as `project/domain/name@version` (with `org:` when set).
pub struct IdDisplay<'a>(pub &'a Identifier);

impl fmt::Display for IdDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        if !id.org.is_empty() {
            write!(f, "{}:", id.org)?;
        }
        write!(f, "{}/{}/{}@{}", id.project, id.domain, id.name, id.version)
    }
}

/// Short form of [`IdDisplay`] for an optional identifier; `<no id>` when absent.
pub fn display_id(id: Option<&Identifier>) -> String {
    id.map_or_else(|| "<no id>".to_string(), |id| IdDisplay(id).to_string())
}

/// A key that identifies an entity regardless of its `resource_type`, so a node's task reference
/// matches a task template's id however the client filled the resource type in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey {
    pub org: String,
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
}

impl From<&Identifier> for EntityKey {
    fn from(id: &Identifier) -> Self {
        Self {
            org: id.org.clone(),
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
            version: id.version.clone(),
        }
    }
}
