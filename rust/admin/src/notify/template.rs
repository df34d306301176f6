//! Flyte's notification templates: `{{ project }}`, `{{ domain }}`, `{{ name }}`, `{{ phase }}`
//! (lower case, as flyteadmin writes it), `{{ error }}` (" The execution failed with error:
//! [...]." or nothing), `{{ workflow.project|domain|name|version }}` and
//! `{{ launch_plan.project|domain|name|version }}`, with or without the spaces inside the
//! braces (flyteadmin accepts both). Alula adds `{{ execution.link }}`: the execution's page in
//! the console.
//!
//! Unlike flyteadmin's chain of string replacements, a template is scanned once, so a value
//! that itself contains `{{ name }}` (an error message, say) is never substituted again.

use serde::{Deserialize, Serialize};

/// flyteadmin's default subject (`emailer.subject` in its configuration).
pub const DEFAULT_SUBJECT: &str =
    "Notice: Execution \"{{ name }}\" has {{ phase }} in \"{{ domain }}\".";

/// flyteadmin's default body, in plain text, with the console link.
pub const DEFAULT_BODY: &str = "Execution \"{{ name }}\" has {{ phase }} in \"{{ domain }}\". \
View details at {{ execution.link }}.{{ error }}";

/// An entity's id as the template variables see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
}

/// The template variables of one notification, captured with the phase change (queued rows
/// keep it as JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub project: String,
    pub domain: String,
    pub name: String,
    /// The phase in lower case: `succeeded`, `failed`, `timed_out`, `aborted`...
    pub phase: String,
    /// The error message of a failed execution; empty otherwise.
    pub error_message: String,
    pub workflow: EntityRef,
    pub launch_plan: EntityRef,
    /// A template of its own (the notification's `template` field), used as the body.
    #[serde(default)]
    pub body_template: String,
}

impl Context {
    /// The value of variable `var`, given the server's public URL; `None` if unknown.
    fn value(&self, var: &str, public_http_url: &str) -> Option<String> {
        let entity = |e: &EntityRef, field: &str| {
            Some(match field {
                "project" => e.project.clone(),
                "domain" => e.domain.clone(),
                "name" => e.name.clone(),
                "version" => e.version.clone(),
                _ => return None,
            })
        };
        Some(match var {
            "project" => self.project.clone(),
            "domain" => self.domain.clone(),
            "name" => self.name.clone(),
            "phase" => self.phase.clone(),
            "error" if self.error_message.is_empty() => String::new(),
            "error" => format!(
                " The execution failed with error: [{}].",
                self.error_message
            ),
            "execution.link" => self.link(public_http_url),
            _ => {
                if let Some(field) = var.strip_prefix("workflow.") {
                    return entity(&self.workflow, field);
                }
                if let Some(field) = var.strip_prefix("launch_plan.") {
                    return entity(&self.launch_plan, field);
                }
                return None;
            }
        })
    }

    /// The execution's page in the console (the console's route, segments escaped).
    pub fn link(&self, public_http_url: &str) -> String {
        format!(
            "{}/console/projects/{}/domains/{}/executions/{}",
            public_http_url.trim_end_matches('/'),
            escape(&self.project),
            escape(&self.domain),
            escape(&self.name)
        )
    }
}

/// A path segment percent-encoded (RFC 3986 unreserved characters kept).
fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `template` with every known `{{ var }}` / `{{var}}` replaced; unknown ones are left as they
/// are, so a typo shows in the message instead of vanishing.
pub fn render(template: &str, ctx: &Context, public_http_url: &str) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let var = &after[..end];
        // flyteadmin accepts `{{ x }}` and `{{x}}`: exactly one space each side, or none.
        let name = var
            .strip_prefix(' ')
            .and_then(|v| v.strip_suffix(' '))
            .unwrap_or(var);
        match ctx.value(name, public_http_url) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What a notification says: its subject (a webhook's text, an event's summary) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// The subject and body of a notification from the configured templates (the notification's
/// own template, if it has one, replaces the body's).
pub fn message(templates: &super::Templates, ctx: &Context, public_http_url: &str) -> Message {
    let body = match ctx.body_template.is_empty() {
        true => &templates.body,
        false => &ctx.body_template,
    };
    Message {
        subject: render(&templates.subject, ctx, public_http_url),
        body: render(body, ctx, public_http_url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Context {
        Context {
            project: "flytesnacks".into(),
            domain: "development".into(),
            name: "f3a9x".into(),
            phase: "failed".into(),
            error_message: "task t1 exited with 1".into(),
            workflow: EntityRef {
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "wf.main".into(),
                version: "v7".into(),
            },
            launch_plan: EntityRef {
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "lp.daily".into(),
                version: "v8".into(),
            },
            body_template: String::new(),
        }
    }

    #[test]
    fn flyte_defaults_render_as_flyteadmin_does() {
        let m = message(
            &super::super::Templates::default(),
            &failed(),
            "http://h:8088/",
        );
        assert_eq!(
            m.subject,
            "Notice: Execution \"f3a9x\" has failed in \"development\"."
        );
        assert_eq!(
            m.body,
            "Execution \"f3a9x\" has failed in \"development\". View details at \
             http://h:8088/console/projects/flytesnacks/domains/development/executions/f3a9x. \
             The execution failed with error: [task t1 exited with 1]."
        );
    }

    #[test]
    fn every_flyte_variable_with_and_without_spaces() {
        let t = "{{project}}/{{ domain }}/{{name}} {{ phase }} wf={{ workflow.project }}:\
                 {{workflow.domain}}:{{ workflow.name }}:{{workflow.version}} lp={{ launch_plan.project }}:\
                 {{ launch_plan.domain }}:{{launch_plan.name}}:{{ launch_plan.version }}";
        assert_eq!(
            render(t, &failed(), "http://h"),
            "flytesnacks/development/f3a9x failed wf=flytesnacks:development:wf.main:v7 \
             lp=flytesnacks:development:lp.daily:v8"
        );
    }

    #[test]
    fn no_error_renders_nothing() {
        let mut ctx = failed();
        ctx.phase = "succeeded".into();
        ctx.error_message.clear();
        assert_eq!(render("done.{{ error }}", &ctx, "http://h"), "done.");
    }

    #[test]
    fn unknown_and_unclosed_variables_stay_visible() {
        let ctx = failed();
        assert_eq!(
            render("{{ nope }} {{  name  }} {{ name", &ctx, "http://h"),
            "{{ nope }} {{  name  }} {{ name"
        );
    }

    #[test]
    fn values_are_never_substituted_again() {
        let mut ctx = failed();
        ctx.error_message = "bad {{ name }}".into();
        assert_eq!(
            render("{{ error }}", &ctx, "http://h"),
            " The execution failed with error: [bad {{ name }}]."
        );
    }

    #[test]
    fn link_escapes_segments() {
        let mut ctx = failed();
        ctx.name = "a b/c".into();
        assert_eq!(
            ctx.link("https://alula.example"),
            "https://alula.example/console/projects/flytesnacks/domains/development/executions/a%20b%2Fc"
        );
    }

    #[test]
    fn a_notification_template_replaces_the_body_only() {
        let mut ctx = failed();
        ctx.body_template = "custom {{ name }}".into();
        let m = message(&super::super::Templates::default(), &ctx, "http://h");
        assert_eq!(m.body, "custom f3a9x");
        assert!(m.subject.starts_with("Notice: Execution \"f3a9x\""));
    }
}
