//! The web console, served by alula-server under `/console` on the HTTP port: projects, their
//! workflows, tasks and launch plans, executions (list, graph, timeline, nodes, attempts, values,
//! logs), actions (terminate, relaunch, recover, signals) and a launch form.
//!
//! Pages are HTML rendered here from [maud] templates; a little JavaScript (`assets/*.js`, no
//! build step) refreshes the live parts and sends actions. Every page reads through the same
//! guarded service traits gRPC and REST serve ([`api::Api`]), on behalf of the request's caller
//! (see [`api::Api::request`]), so the console never shows what the API would not show them.
//!
//! # Authentication
//! With authentication on, pages and actions need a signed-in caller: a page request without
//! one is redirected (303) to `/console/login?next=<the page>` (`next` must be a console path,
//! else the login lands on `/console`), an action answers 401 `{code, message}`, and a refused
//! session cookie (expired, say) is cleared on the way. The session is the `alula_session`
//! cookie holding an access token (HttpOnly, SameSite=Lax, Secure on https) that the HTTP layer
//! reads like a bearer token. Controls that launch, terminate, relaunch, recover or answer
//! gates are shown only to callers with the launch permission on the project and domain
//! (the runner role and above); the services refuse everyone else's forged requests anyway.
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
//!   `{"url"}` or the REST gateway's `{code, message}` out;
//! - `GET /console/login[?next=]`: OIDC: to the identity provider (authorization code with
//!   PKCE); built-in: the client id and secret form, posted to `POST /console/login`;
//!   `GET /console/oauth2/callback?code&state`: the provider's way back; `POST /console/logout`.
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
//! - with authentication on, the header shows the signed-in caller as `<span class="user-name"
//!   data-user="{display name}">` and a sign-out button `button#logout`; the built-in login
//!   form has `[name=client_id]`, `[name=client_secret]` and the submit button `#login`, its
//!   refusal `#login-error`; controls a caller may not use are absent (no `data-action`
//!   elements, no `dialog#terminate-dialog`), and the launch form answers 403;
//! - an element whose `data-live="{url}"` attribute is set is replaced by the same element of
//!   that URL's answer every few seconds; the server drops the attribute once nothing changes.

mod actions;
mod api;
mod assets;
mod error;
mod format;
pub(crate) mod forms;
mod graph;
mod login;
mod logs;
mod pages;
mod session;
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
pub use session::SESSION_COOKIE;

/// What every handler is given: the services behind the gate, which it binds to the request's
/// caller by extracting an [`Api`].
pub(crate) type State = api::Services;

/// The console's routes (`/console/...`, and `/` sending browsers there), for the HTTP port.
///
/// When authentication is on, pages and actions need a signed-in caller
/// ([`session::require_login`]); the assets and the login routes do not.
pub fn router(api: Api) -> Router {
    let services = api.services();
    let guarded = pages::routes(
        Router::new()
            .merge(actions::routes())
            .merge(graph::routes()),
    )
    .route_layer(axum::middleware::from_fn_with_state(
        services.clone(),
        session::require_login,
    ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .merge(assets::routes())
        .merge(login::routes())
        .merge(guarded)
        .with_state(services)
}
