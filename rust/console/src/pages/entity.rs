//! One workflow, task or launch plan: its versions (paged, newest first), the selected
//! version's interface and details (a workflow's nodes and launch plans, a task's container, a
//! launch plan's inputs, state and schedule), and the executions it ran.

use alula_admin::authz::Permission;
use alula_core::types::display_type;
use alula_idl::flyteidl::admin::{
    LaunchPlan, LaunchPlanState, NamedEntityGetRequest, NamedEntityIdentifier, ObjectGetRequest,
    Task, Workflow,
};
use alula_idl::flyteidl::core::{
    node, parameter, task_node, task_template, workflow_node, Identifier, LiteralMap, Node,
    ParameterMap, ResourceType, VariableMap,
};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use maud::{html, Markup};

use super::entities::{self, Version};
use super::executions::{self, query};
use super::scope::{Params, Scope};
use crate::error::{ConsoleError, ConsoleResult};
use crate::format;
use crate::shell::{self, Crumb, Page};
use crate::{urls, values, Api};

/// Versions per page, and executions shown.
const VERSIONS_PAGE: u32 = 20;
const EXECUTIONS_SHOWN: u32 = 10;
/// Launch plans of a workflow listed on its page.
const LAUNCH_PLANS_SHOWN: u32 = 20;

/// The selected version, fetched whole.
enum Selected {
    Workflow(Box<Workflow>),
    Task(Box<Task>),
    LaunchPlan(Box<LaunchPlan>),
}

pub(crate) async fn page(
    api: &Api,
    scope: &Scope,
    kind: ResourceType,
    name: &str,
    version: Option<&str>,
    params: &Params,
) -> ConsoleResult<Page> {
    let (project, domain) = (scope.id(), scope.domain.as_str());
    let named = AdminService::get_named_entity(
        &api.admin,
        api.request(NamedEntityGetRequest {
            resource_type: kind as i32,
            id: Some(NamedEntityIdentifier {
                project: project.to_string(),
                domain: domain.to_string(),
                name: name.to_string(),
                org: String::new(),
            }),
        }),
    )
    .await?
    .into_inner();
    let description = named.metadata.map(|m| m.description).unwrap_or_default();

    let offset = params.offset("versions");
    let (versions, more_versions) =
        entities::versions(api, kind, project, domain, name, VERSIONS_PAGE, offset).await?;
    let selected_version = match version {
        Some(v) => v.to_string(),
        None => {
            let latest = if offset == 0 {
                versions.first().map(|v| v.id.version.clone())
            } else {
                entities::versions(api, kind, project, domain, name, 1, 0)
                    .await?
                    .0
                    .into_iter()
                    .next()
                    .map(|v| v.id.version)
            };
            latest.ok_or_else(|| {
                ConsoleError::not_found(format!("{name:?} has no registered versions"))
            })?
        }
    };
    let id = Identifier {
        resource_type: kind as i32,
        project: project.to_string(),
        domain: domain.to_string(),
        name: name.to_string(),
        version: selected_version,
        org: String::new(),
    };
    let selected = fetch(api, kind, &id).await?;

    let (filter_field, list_key) = match kind {
        ResourceType::Task => ("task.name", "task"),
        ResourceType::LaunchPlan => ("launch_plan.name", "launch_plan"),
        _ => ("workflow.name", "workflow"),
    };
    let runs = executions::list(
        api,
        project,
        domain,
        &format!("eq({filter_field},{name})"),
        executions::newest_first(),
        EXECUTIONS_SHOWN,
        0,
    )
    .await?;
    let details = match &selected {
        Selected::Workflow(wf) => workflow_details(api, wf).await?,
        Selected::Task(task) => task_details(task),
        Selected::LaunchPlan(lp) => launch_plan_details(api, lp).await,
    };
    let unversioned = Identifier {
        version: String::new(),
        ..id.clone()
    };
    let live_url = format!(
        "{}{}",
        urls::entity(&id),
        if offset > 0 {
            format!("?versions={offset}")
        } else {
            String::new()
        }
    );
    let versions_link = |to: u64| {
        let base = if version.is_some() {
            urls::entity(&id)
        } else {
            urls::entity(&unversioned)
        };
        let pairs = if to > 0 {
            vec![("versions", to.to_string())]
        } else {
            Vec::new()
        };
        format!("{base}{}", query(&pairs))
    };
    let kind_title = entities::title(kind);
    let body = html! {
        h1 {
            span.muted { (singular(kind)) " " }
            (name)
        }
        @if !description.is_empty() {
            p.description { (description) }
        }
        dl.facts {
            dt { "Version" } dd.mono { (id.version) }
            dt { "Registered" } dd { (format::time(created_at(&selected).as_ref())) }
        }
        (details)
        section aria-labelledby="interface-title" {
            h2 #interface-title { "Interface" }
            (interface(&selected))
        }
        section aria-labelledby="executions-title" {
            h2 #executions-title { "Executions" }
            (executions::table("entity-executions", &live_url, &runs.executions))
            @if !runs.executions.is_empty() {
                p {
                    a href=(format!("{}{}", urls::executions(project, domain), query(&[(list_key, name.to_string())]))) {
                        "All executions of " (name)
                    }
                }
            }
        }
        section aria-labelledby="versions-title" {
            h2 #versions-title { "Versions" }
            (versions_table(&versions, &id.version))
            nav.pager aria-label="Versions pages" {
                @if offset > 0 {
                    a rel="prev" href=(versions_link(offset.saturating_sub(u64::from(VERSIONS_PAGE)))) { "← Newer" }
                }
                @if more_versions {
                    a rel="next" href=(versions_link(offset + u64::from(VERSIONS_PAGE))) { "Older →" }
                }
            }
        }
    };
    let mut crumbs = scope.crumbs();
    crumbs.push(Crumb::link(
        kind_title,
        urls::entities(kind, project, domain),
    ));
    crumbs.push(Crumb::here(name));
    Ok(shell::page(
        &format!("{name} · {kind_title}"),
        &crumbs,
        body,
    ))
}

fn singular(kind: ResourceType) -> &'static str {
    match kind {
        ResourceType::Task => "Task",
        ResourceType::LaunchPlan => "Launch plan",
        _ => "Workflow",
    }
}

async fn fetch(api: &Api, kind: ResourceType, id: &Identifier) -> ConsoleResult<Selected> {
    let request = || {
        api.request(ObjectGetRequest {
            id: Some(id.clone()),
        })
    };
    Ok(match kind {
        ResourceType::Task => Selected::Task(Box::new(
            AdminService::get_task(&api.admin, request())
                .await?
                .into_inner(),
        )),
        ResourceType::LaunchPlan => Selected::LaunchPlan(Box::new(
            AdminService::get_launch_plan(&api.admin, request())
                .await?
                .into_inner(),
        )),
        _ => Selected::Workflow(Box::new(
            AdminService::get_workflow(&api.admin, request())
                .await?
                .into_inner(),
        )),
    })
}

fn created_at(selected: &Selected) -> Option<alula_idl::wkt::Timestamp> {
    match selected {
        Selected::Workflow(wf) => wf.closure.as_ref()?.created_at,
        Selected::Task(t) => t.closure.as_ref()?.created_at,
        Selected::LaunchPlan(lp) => lp.closure.as_ref()?.created_at,
    }
}

/// Inputs and outputs with their types: a launch plan's expected inputs say which are
/// required and which have defaults.
fn interface(selected: &Selected) -> Markup {
    let (inputs, outputs, parameters): (
        Option<&VariableMap>,
        Option<&VariableMap>,
        Option<&ParameterMap>,
    ) = match selected {
        Selected::Workflow(wf) => {
            let iface = wf
                .closure
                .as_ref()
                .and_then(|c| c.compiled_workflow.as_ref())
                .and_then(|c| c.primary.as_ref())
                .and_then(|p| p.template.as_ref())
                .and_then(|t| t.interface.as_ref());
            (
                iface.and_then(|i| i.inputs.as_ref()),
                iface.and_then(|i| i.outputs.as_ref()),
                None,
            )
        }
        Selected::Task(t) => {
            let iface = t
                .closure
                .as_ref()
                .and_then(|c| c.compiled_task.as_ref())
                .and_then(|c| c.template.as_ref())
                .and_then(|t| t.interface.as_ref());
            (
                iface.and_then(|i| i.inputs.as_ref()),
                iface.and_then(|i| i.outputs.as_ref()),
                None,
            )
        }
        Selected::LaunchPlan(lp) => {
            let closure = lp.closure.as_ref();
            (
                None,
                closure.and_then(|c| c.expected_outputs.as_ref()),
                closure.and_then(|c| c.expected_inputs.as_ref()),
            )
        }
    };
    html! {
        h3 { "Inputs" }
        @if let Some(params) = parameters {
            @if params.parameters.is_empty() { p.none { "None." } } @else {
                table.interface data-direction="inputs" {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description" } } }
                    tbody {
                        @for (name, p) in &params.parameters {
                            @let var = p.var.as_ref();
                            tr data-name=(name) {
                                td.mono { (name) }
                                td.mono { (var.and_then(|v| v.r#type.as_ref()).map(display_type).unwrap_or_default()) }
                                td { @if matches!(p.behavior, Some(parameter::Behavior::Required(true))) { "required" } @else { "optional" } }
                                td { (var.map(|v| v.description.as_str()).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        } @else {
            (variables("inputs", inputs))
        }
        h3 { "Outputs" }
        (variables("outputs", outputs))
    }
}

fn variables(direction: &str, vars: Option<&VariableMap>) -> Markup {
    html! {
        @match vars.filter(|v| !v.variables.is_empty()) {
            None => p.none { "None." },
            Some(vars) => table.interface data-direction=(direction) {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Description" } } }
                tbody {
                    @for (name, var) in &vars.variables {
                        tr data-name=(name) {
                            td.mono { (name) }
                            td.mono { (var.r#type.as_ref().map(display_type).unwrap_or_default()) }
                            td { (var.description) }
                        }
                    }
                }
            },
        }
    }
}

fn versions_table(versions: &[Version], selected: &str) -> Markup {
    html! {
        table.versions {
            thead { tr { th scope="col" { "Version" } th scope="col" { "Registered" } @if versions.iter().any(|v| v.state.is_some()) { th scope="col" { "State" } } } }
            tbody {
                @for v in versions {
                    tr data-version=(v.id.version) {
                        td.mono {
                            @if v.id.version == selected {
                                a href=(urls::entity(&v.id)) aria-current="page" { (v.id.version) } " " span.muted { "(shown)" }
                            } @else {
                                a href=(urls::entity(&v.id)) { (v.id.version) }
                            }
                        }
                        td { (format::time(v.created_at.as_ref())) }
                        @if let Some(state) = v.state { td { (entities::state_badge(state)) } }
                    }
                }
            }
        }
    }
}

/// A workflow's nodes (what each runs, what it waits for) and the launch plans launching it.
async fn workflow_details(api: &Api, wf: &Workflow) -> ConsoleResult<Markup> {
    let id = wf.id.clone().unwrap_or_default();
    let can_launch = api
        .allows(Permission::Launch, &id.project, &id.domain)
        .await;
    let nodes: Vec<&Node> = wf
        .closure
        .as_ref()
        .and_then(|c| c.compiled_workflow.as_ref())
        .and_then(|c| c.primary.as_ref())
        .and_then(|p| p.template.as_ref())
        .map(|t| {
            t.nodes
                .iter()
                .filter(|n| n.id != "start-node" && n.id != "end-node")
                .collect()
        })
        .unwrap_or_default();
    let (launch_plans, more) = entities::versions_matching(
        api,
        ResourceType::LaunchPlan,
        &id.project,
        &id.domain,
        "",
        &entities::launch_plans_of_workflow(&id.name),
        LAUNCH_PLANS_SHOWN,
        0,
    )
    .await?;
    Ok(html! {
        section aria-labelledby="nodes-title" {
            h2 #nodes-title { "Nodes" }
            @if nodes.is_empty() { p.none { "No nodes." } } @else {
                table.nodes {
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Runs" } th scope="col" { "After" } } }
                    tbody {
                        @for n in &nodes {
                            tr data-node-id=(n.id) {
                                td {
                                    span.mono { (n.id) }
                                    @if let Some(m) = n.metadata.as_ref().filter(|m| !m.name.is_empty() && m.name != n.id) {
                                        " " span.muted { (m.name) }
                                    }
                                }
                                td { (node_target(n)) }
                                td.mono { (n.upstream_node_ids.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="lps-title" {
            h2 #lps-title { "Launch plans" }
            @if launch_plans.is_empty() { p.none { "No launch plans launch this workflow." } } @else {
                table.launch-plans {
                    thead { tr { th scope="col" { "Launch plan" } th scope="col" { "Version" } th scope="col" { "State" } th scope="col" { "Registered" } th scope="col" { span.visually-hidden { "Launch" } } } }
                    tbody {
                        @for lp in &launch_plans {
                            tr data-entity=(lp.id.name) {
                                td { a href=(urls::entity(&Identifier { version: String::new(), ..lp.id.clone() })) { (lp.id.name) } }
                                td.mono { a href=(urls::entity(&lp.id)) { (lp.id.version) } }
                                td { (entities::state_badge(lp.state.unwrap_or_default())) }
                                td { (format::time(lp.created_at.as_ref())) }
                                td {
                                    @if can_launch {
                                        a.button data-action="launch" href=(urls::launch(&lp.id)) { "Launch" }
                                    }
                                }
                            }
                        }
                    }
                }
                @if more { p.muted { "Showing the " (LAUNCH_PLANS_SHOWN) " most recent." } }
            }
        }
    })
}

/// What a node runs, linked where it is a registered entity.
fn node_target(n: &Node) -> Markup {
    let linked = |label: &str, id: &Identifier| {
        html! { (label) " " a href=(urls::entity(id)) { (id.name) } " " span.version.mono { (id.version) } }
    };
    match &n.target {
        Some(node::Target::TaskNode(t)) => match &t.reference {
            Some(task_node::Reference::ReferenceId(id)) => linked("task", id),
            None => html! { "task" },
        },
        Some(node::Target::WorkflowNode(w)) => match &w.reference {
            Some(workflow_node::Reference::LaunchplanRef(id)) => linked("launch plan", id),
            Some(workflow_node::Reference::SubWorkflowRef(id)) => linked("subworkflow", id),
            None => html! { "workflow" },
        },
        Some(node::Target::BranchNode(_)) => html! { "branch" },
        Some(node::Target::GateNode(_)) => html! { "gate (approval, signal or sleep)" },
        Some(node::Target::ArrayNode(a)) => html! {
            "map over " @if let Some(inner) = &a.node { (node_target(inner)) }
        },
        None => html! { span.none { "—" } },
    }
}

fn task_details(task: &Task) -> Markup {
    let template = task
        .closure
        .as_ref()
        .and_then(|c| c.compiled_task.as_ref())
        .and_then(|c| c.template.as_ref());
    let image = template.and_then(|t| match &t.target {
        Some(task_template::Target::Container(c)) => Some(c.image.as_str()),
        _ => None,
    });
    html! {
        dl.facts.task {
            dt { "Type" } dd.mono { (template.map(|t| t.r#type.as_str()).unwrap_or_default()) }
            @if let Some(image) = image {
                dt { "Image" } dd.mono { (image) }
            }
            @if !task.short_description.is_empty() {
                dt { "Summary" } dd { (task.short_description) }
            }
        }
    }
}

/// A launch plan's state, schedule, workflow, launch link, and its default and fixed inputs.
async fn launch_plan_details(api: &Api, lp: &LaunchPlan) -> Markup {
    let id = lp.id.clone().unwrap_or_default();
    let can_launch = api
        .allows(Permission::Launch, &id.project, &id.domain)
        .await;
    let spec = lp.spec.clone().unwrap_or_default();
    let state = lp.closure.as_ref().map_or(0, |c| c.state);
    let defaults = LiteralMap {
        literals: spec
            .default_inputs
            .iter()
            .flat_map(|p| &p.parameters)
            .filter_map(|(name, p)| match &p.behavior {
                Some(parameter::Behavior::Default(value)) => Some((name.clone(), value.clone())),
                _ => None,
            })
            .collect(),
    };
    let types = VariableMap {
        variables: spec
            .default_inputs
            .iter()
            .flat_map(|p| &p.parameters)
            .filter_map(|(name, p)| Some((name.clone(), p.var.clone()?)))
            .collect(),
    };
    let fixed = spec.fixed_inputs.clone().unwrap_or_default();
    let defaults_html = values::literal_map(api, &defaults, Some(&types)).await;
    let fixed_html = values::literal_map(api, &fixed, None).await;
    html! {
        dl.facts.launch-plan {
            dt { "State" }
            dd data-state=(LaunchPlanState::try_from(state).unwrap_or(LaunchPlanState::Inactive).as_str_name()) {
                (entities::state_badge(state))
                @if state == LaunchPlanState::Active as i32 { " " span.muted { "(this version runs on its schedule)" } }
            }
            dt { "Schedule" }
            dd { @match entities::schedule_text(lp) { Some(text) => span.schedule { (text) }, None => span.none { "none" } } }
            dt { "Workflow" }
            dd {
                @if let Some(wf) = &spec.workflow_id {
                    a href=(urls::entity(wf)) { (wf.name) } " " span.version.mono { (wf.version) }
                }
            }
        }
        @if can_launch {
            p { a.button.primary data-action="launch" href=(urls::launch(&id)) { "Launch" } }
        }
        section aria-labelledby="defaults-title" {
            h2 #defaults-title { "Default inputs" }
            @if defaults.literals.is_empty() { p.none { "None." } } @else { div.values data-kind="defaults" { (defaults_html) } }
            h2 { "Fixed inputs" }
            @if fixed.literals.is_empty() { p.none { "None." } } @else { div.values data-kind="fixed" { (fixed_html) } }
        }
    }
}
