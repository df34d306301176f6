//! The web console, served by alula-server under `/console` on the HTTP port: projects, their
//! workflows, tasks and launch plans, executions (list, graph, timeline, nodes, attempts, values,
//! logs), actions (terminate, relaunch, recover, signals) and a launch form.
//!
//! Pages are HTML rendered here from [maud] templates; a little JavaScript (`assets/*.js`, no
//! build step) refreshes the live parts and sends actions. Every page reads through the same
//! service traits gRPC and REST serve ([`api::Api`]), so the console never shows what the API
//! cannot, and the caller's identity will reach those traits the same way once authentication
//! lands (see [`api::Api::request`]).
//!
//! # URLs
//! Flyte's console shapes, so the links flytekit prints open the right page:
//! - `/console`, `/console/select-project`: the projects;
//! - `/console/projects/{p}[/dashboard]?domain=d`, `/console/projects/{p}/domains/{d}`: a project;
//! - `/console/projects/{p}/{executions|workflows|tasks|launchPlans}?domain=d`: lists;
//! - `/console/projects/{p}/{workflows|tasks|launchPlans}/{name}?domain=d` and
//!   `/console/projects/{p}/domains/{d}/{workflows|tasks|launchPlans}/{name}[/version/{v}]`:
//!   an entity and its versions;
//! - `/console/projects/{p}/domains/{d}/{workflow|task|launch_plan}/{name}/version/{v}`: what
//!   flytekit's `generate_console_url` prints for entities (redirected to the shapes above);
//! - `/console/projects/{p}/domains/{d}/executions/{name}[?node=<node id>[&attempt=N]]`: an
//!   execution; `.../executions/{name}/nodes/{node id}` its node panel alone,
//!   `.../executions/{name}/graph?path=<node ids>` a nested graph (subworkflow, branch, dynamic),
//!   `.../executions/{name}/nodes/{node id}/elements?phase=&page=` a map node's elements;
//! - `/console/projects/{p}/domains/{d}/launchPlans/{name}/launch[?version=v]` and
//!   `/console/projects/{p}/domains/{d}/workflows/{name}/launch`: the launch form;
//! - `POST /console/actions/{launch|terminate|relaunch|recover|approve|reject|signal}`: JSON in,
//!   `{"url"}` or the REST gateway's `{code, message}` out.
//!
//! # What tests may rely on (the page contract)
//! Browser tests find things by these attributes, not by text or layout:
//! - a phase is shown as `<span class="phase" data-phase="SUCCEEDED">` (the enum's proto name);
//! - a row of the executions list is `<tr data-execution="{name}" data-phase="...">`;
//! - the graph is `<svg id="graph">`, each node a `<g class="node" data-node-id="{id}"
//!   data-phase="...">` (map nodes add `data-elements="{total}"`);
//! - the selected node's panel is `<section id="node-detail" data-node-id="{id}">`, its attempts
//!   `<li data-attempt="{retry}" data-phase="...">`, values `<div class="value"
//!   data-name="{input or output name}">`, logs `<pre class="logs" data-stream="stdout">`;
//! - action buttons carry `data-action="terminate|relaunch|recover|approve|reject|signal|launch"`
//!   (terminate opens `dialog#terminate-dialog`: cause `#terminate-cause`, confirm
//!   `button[data-confirm=terminate]`; a signal's value is `#signal-value`);
//! - a nested node's expand link is `svg#graph a[data-expand]`, its graph is drawn in
//!   `section.graph-nested[data-path]`; the launch form's inputs are named after the launch
//!   plan's inputs (`[name="{input}"]`) and labelled;
//! - an element whose `data-live="{url}"` attribute is set is replaced by the same element of
//!   that URL's answer every few seconds; the server drops the attribute once nothing changes.

mod actions;
mod api;
mod assets;
mod error;
mod format;
pub(crate) mod forms;
mod graph;
mod logs;
mod pages;
mod shell;
mod timeline;
mod urls;
mod values;

// The test fixture is shared with the integration tests and the benchmark, which name this
// crate `alula_console`; inside, the same path names the crate itself.
#[cfg(test)]
extern crate self as alula_console;
#[cfg(test)]
#[path = "../tests/fixture/mod.rs"]
mod fixture;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;

pub use api::Api;
pub use error::ConsoleError;

/// Everything a page handler needs.
pub type State = Api;

/// The console's routes (`/console/...`, and `/` sending browsers there), for the HTTP port.
pub fn router(api: Api) -> Router {
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .merge(assets::routes())
        .merge(actions::routes())
        .merge(graph::routes());
    pages::routes(router).with_state(api)
}
