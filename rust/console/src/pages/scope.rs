//! What the project pages share: the query string read as Flyte's console writes it (repeated
//! keys allowed), the project and domain a page is about (a missing one is a 404), and the
//! domain switcher.

use alula_admin::authz::Permission;
use alula_idl::flyteidl::admin::{Project, ProjectGetRequest};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use maud::{html, Markup};

use crate::error::{ConsoleError, ConsoleResult};
use crate::shell::Crumb;
use crate::{urls, Api};

/// A query string's pairs, decoded, in order. Forms send one pair per checked box, so a key may
/// repeat (`phase=RUNNING&phase=FAILED`), which axum's `Query` cannot read into a list.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key), decode(value))
            })
            .collect();
        Self(pairs)
    }

    /// The first non-empty value of `key`, trimmed.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every non-empty value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A page offset (`token`): admin's pagination tokens are offsets, so they are kept as
    /// numbers and "previous" is an offset too. Anything else reads as the first page.
    pub(crate) fn offset(&self, key: &str) -> u64 {
        self.get(key).and_then(|t| t.parse().ok()).unwrap_or(0)
    }
}

/// The admin pagination token for an offset, the inverse of [`Params::offset`] (the first page
/// has none).
pub(crate) fn token(offset: u64) -> String {
    if offset == 0 {
        String::new()
    } else {
        offset.to_string()
    }
}

/// A project's display name (its id when it has none).
pub(crate) fn project_name(project: &Project) -> &str {
    if project.name.is_empty() {
        &project.id
    } else {
        &project.name
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The project and domain a page shows.
pub(crate) struct Scope {
    pub project: Project,
    pub domain: String,
    /// Whether the caller may launch here: launch links and forms are shown only then.
    pub can_launch: bool,
}

impl Scope {
    /// Reads the project (404 when it is not registered) and checks the domain is one of its
    /// domains; without a domain, the project's first one (Flyte's console does the same).
    pub(crate) async fn load(
        api: &Api,
        project: &str,
        domain: Option<&str>,
    ) -> ConsoleResult<Self> {
        let project = AdminService::get_project(
            &api.admin,
            api.request(ProjectGetRequest {
                id: project.to_string(),
                org: String::new(),
            }),
        )
        .await?
        .into_inner();
        let domain = match domain {
            Some(d) if project.domains.iter().any(|known| known.id == d) => d.to_string(),
            Some(d) => {
                return Err(ConsoleError::not_found(format!(
                    "project {:?} has no domain {d:?}",
                    project.id
                )))
            }
            None => project
                .domains
                .first()
                .map(|d| d.id.clone())
                .ok_or_else(|| {
                    ConsoleError::not_found(format!("project {:?} has no domains", project.id))
                })?,
        };
        let can_launch = api.allows(Permission::Launch, &project.id, &domain).await;
        Ok(Self {
            project,
            domain,
            can_launch,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.project.id
    }

    /// The project's display name (its id when it has none).
    pub(crate) fn name(&self) -> &str {
        project_name(&self.project)
    }

    /// Projects / {project} ({domain}), the project linked.
    pub(crate) fn crumbs(&self) -> Vec<Crumb> {
        vec![
            Crumb::link("Projects", urls::projects()),
            Crumb::link(
                format!("{} ({})", self.name(), self.domain),
                urls::project(self.id(), &self.domain),
            ),
        ]
    }

    /// Links to the same page in each of the project's domains, the current one marked.
    pub(crate) fn domain_switcher(&self, href: impl Fn(&str) -> String) -> Markup {
        html! {
            nav.domains aria-label="Domains" {
                span.muted { "Domain:" }
                ul {
                    @for d in &self.project.domains {
                        li {
                            @if d.id == self.domain {
                                a.current href=(href(&d.id)) aria-current="page" { (d.name) }
                            } @else {
                                a href=(href(&d.id)) { (d.name) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_and_repeat() {
        let p = Params::parse(Some(
            "phase=RUNNING&phase=FAILED&workflow=a+b%2Fc&x=&token=20&bad=%zz",
        ));
        assert_eq!(p.all("phase"), ["RUNNING", "FAILED"]);
        assert_eq!(p.get("workflow"), Some("a b/c"));
        assert_eq!(p.get("x"), None);
        assert_eq!(p.offset("token"), 20);
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(Params::parse(None).offset("token"), 0);
    }
}
