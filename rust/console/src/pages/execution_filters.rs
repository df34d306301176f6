//! The executions list's filter form and what it asks of admin: phases, names, who launched,
//! labels, a time range and the sort, read from the query string and written back into links.

use alula_idl::flyteidl::admin::{sort::Direction, Sort};
use chrono::{NaiveDate, NaiveDateTime};
use maud::{html, Markup};

use super::scope::Params;
use crate::format;

/// The phases offered by the filter, in the order an execution goes through them.
const PHASES: [&str; 10] = [
    "UNDEFINED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDING",
    "SUCCEEDED",
    "FAILING",
    "FAILED",
    "ABORTING",
    "ABORTED",
    "TIMED_OUT",
];

/// Sort keys admin's ListExecutions accepts, with their labels.
const SORT_KEYS: [(&str, &str); 4] = [
    ("created_at", "Created"),
    ("updated_at", "Updated"),
    ("name", "Name"),
    ("phase", "Phase"),
];

/// What the filter form asks for, as read from the query string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Filters {
    pub phases: Vec<String>,
    pub workflow: String,
    pub launch_plan: String,
    pub task: String,
    pub user: String,
    /// `key` or `key=value`.
    pub label: String,
    pub from: String,
    pub to: String,
    pub sort: String,
    pub ascending: bool,
}

impl Filters {
    pub(crate) fn from_params(params: &Params) -> Self {
        let text = |key: &str| params.get(key).unwrap_or_default().to_string();
        let sort = params
            .get("sort")
            .filter(|s| SORT_KEYS.iter().any(|(k, _)| k == s))
            .unwrap_or("created_at")
            .to_string();
        Self {
            phases: params
                .all("phase")
                .into_iter()
                .filter(|p| PHASES.contains(p))
                .map(String::from)
                .collect(),
            workflow: text("workflow"),
            launch_plan: text("launch_plan"),
            task: text("task"),
            user: text("user"),
            label: text("label"),
            from: text("from"),
            to: text("to"),
            sort,
            ascending: params.get("order") == Some("asc"),
        }
    }

    /// Admin's filter expression (`eq(workflow.name,x)+value_in(phase,A;B)+...`). Times the
    /// browser's `datetime-local` input sends (no zone) are read as UTC; anything unreadable is
    /// passed on as typed so admin's answer names what is wrong.
    pub(crate) fn admin_filters(&self) -> String {
        let mut terms = Vec::new();
        if !self.phases.is_empty() {
            terms.push(format!("value_in(phase,{})", self.phases.join(";")));
        }
        for (field, value) in [
            ("workflow.name", &self.workflow),
            ("launch_plan.name", &self.launch_plan),
            ("task.name", &self.task),
            ("user", &self.user),
        ] {
            if !value.is_empty() {
                terms.push(format!("eq({field},{value})"));
            }
        }
        if !self.label.is_empty() {
            match self.label.split_once('=') {
                Some((key, value)) => {
                    terms.push(format!("eq(execution_tag.key,{})", key.trim()));
                    terms.push(format!("eq(execution_tag.value,{})", value.trim()));
                }
                None => terms.push(format!("eq(execution_tag.key,{})", self.label)),
            }
        }
        if !self.from.is_empty() {
            terms.push(format!("gte(created_at,{})", rfc3339(&self.from)));
        }
        if !self.to.is_empty() {
            terms.push(format!("lte(created_at,{})", rfc3339(&self.to)));
        }
        terms.join("+")
    }

    pub(crate) fn sort_by(&self) -> Sort {
        Sort {
            key: self.sort.clone(),
            direction: if self.ascending {
                Direction::Ascending
            } else {
                Direction::Descending
            } as i32,
        }
    }

    /// The filters as query pairs, for links that keep them (pages, the live refresh).
    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs: Vec<(&'static str, String)> =
            self.phases.iter().map(|p| ("phase", p.clone())).collect();
        for (key, value) in [
            ("workflow", &self.workflow),
            ("launch_plan", &self.launch_plan),
            ("task", &self.task),
            ("user", &self.user),
            ("label", &self.label),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        if self.sort != "created_at" {
            pairs.push(("sort", self.sort.clone()));
        }
        if self.ascending {
            pairs.push(("order", "asc".to_string()));
        }
        pairs
    }

    fn is_empty(&self) -> bool {
        self.admin_filters().is_empty()
    }
}

/// `2026-12-02T15:04` (a `datetime-local` value) → `2026-12-02T15:04:00Z`; RFC 3339 as is.
fn rfc3339(text: &str) -> String {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return text.to_string();
    }
    for layout in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            return t
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = day.and_hms_opt(0, 0, 0) {
            return t
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
    }
    text.to_string()
}

pub(crate) fn filter_form(action: &str, f: &Filters) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" aria-label="Filter executions" {
            fieldset.phases {
                legend { "Phase" }
                @for phase in PHASES {
                    @let id = format!("phase-{}", phase.to_lowercase());
                    span.check {
                        input type="checkbox" id=(id) name="phase" value=(phase)
                            checked[f.phases.iter().any(|p| p == phase)];
                        label for=(id) { (format::phase_label(phase)) }
                    }
                }
            }
            div.toolbar {
                (text_field("f-workflow", "workflow", "Workflow", &f.workflow, "text"))
                (text_field("f-launch-plan", "launch_plan", "Launch plan", &f.launch_plan, "text"))
                (text_field("f-task", "task", "Task", &f.task, "text"))
                (text_field("f-user", "user", "Launched by", &f.user, "text"))
                (text_field("f-label", "label", "Label (key or key=value)", &f.label, "text"))
                (text_field("f-from", "from", "Created from (UTC)", &f.from, "datetime-local"))
                (text_field("f-to", "to", "Created until (UTC)", &f.to, "datetime-local"))
                div.field {
                    label for="f-sort" { "Sort by" }
                    select #f-sort name="sort" {
                        @for (key, label) in SORT_KEYS {
                            option value=(key) selected[f.sort == key] { (label) }
                        }
                    }
                }
                div.field {
                    label for="f-order" { "Order" }
                    select #f-order name="order" {
                        option value="desc" selected[!f.ascending] { "Descending" }
                        option value="asc" selected[f.ascending] { "Ascending" }
                    }
                }
                div.field.actions {
                    button.primary type="submit" { "Apply" }
                    @if !f.is_empty() || f.sort != "created_at" || f.ascending {
                        a.button href=(action) { "Clear" }
                    }
                }
            }
        }
    }
}

fn text_field(id: &str, name: &str, label: &str, value: &str, kind: &str) -> Markup {
    // A time typed by hand (RFC 3339) would not fit a datetime-local input; show it as text so
    // the reader sees what admin refused.
    let kind = if kind == "datetime-local"
        && !value.is_empty()
        && NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").is_err()
        && NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").is_err()
    {
        "text"
    } else {
        kind
    };
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::executions::query;
    use super::*;

    #[test]
    fn filters_become_admin_expressions() {
        let params = Params::parse(Some(
            "phase=RUNNING&phase=FAILED&phase=BOGUS&workflow=wf&user=ann&label=team%3Dml&from=2026-12-01T10:30&to=2026-12-02T00:00:00Z&sort=name&order=asc",
        ));
        let f = Filters::from_params(&params);
        assert_eq!(
            f.admin_filters(),
            "value_in(phase,RUNNING;FAILED)+eq(workflow.name,wf)+eq(user,ann)\
             +eq(execution_tag.key,team)+eq(execution_tag.value,ml)\
             +gte(created_at,2026-12-01T10:30:00Z)+lte(created_at,2026-12-02T00:00:00Z)"
        );
        assert_eq!(f.sort_by().key, "name");
        assert_eq!(f.sort_by().direction, Direction::Ascending as i32);
        assert_eq!(
            query(&f.query_pairs()),
            "?phase=RUNNING&phase=FAILED&workflow=wf&user=ann&label=team%3Dml\
             &from=2026-12-01T10%3A30&to=2026-12-02T00%3A00%3A00Z&sort=name&order=asc"
        );
        let unknown_sort = Filters::from_params(&Params::parse(Some("sort=drop")));
        assert_eq!(unknown_sort.sort, "created_at");
        assert!(unknown_sort.admin_filters().is_empty());
    }

    #[test]
    fn unreadable_times_pass_through_for_admin_to_name() {
        assert_eq!(rfc3339("2026-12-01"), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339("yesterday"), "yesterday");
    }
}
