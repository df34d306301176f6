//! The projects, dashboard, entity and executions-list pages over a real admin: rows carry the
//! page contract's attributes, filters narrow, pages link on, and bad input is a notice or 404.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod fixture;

use alula_idl::flyteidl::core::{workflow_execution::Phase, ResourceType};
use axum::http::StatusCode;
use fixture::{attribute_values, execution_rows, row_phase, Console};

const EXECUTIONS: &str = "/console/projects/flytesnacks/domains/development/executions";

#[tokio::test]
async fn projects_list_every_domain() {
    let console = Console::start().await;
    for uri in ["/console", "/console/select-project", "/console/projects"] {
        let html = console.page(uri).await;
        assert_eq!(attribute_values(&html, "data-project"), ["flytesnacks"]);
        assert_eq!(
            attribute_values(&html, "data-domain"),
            ["development", "staging", "production"]
        );
        assert!(html.contains("href=\"/console/projects/flytesnacks/domains/staging\""));
    }
}

#[tokio::test]
async fn dashboard_shows_recent_runs_and_entities() {
    let console = Console::start().await;
    let b = console.register_basics("v1", Some("0 * * * *")).await;
    console.activate(&b.launch_plan).await;
    console.launch_as(&b.launch_plan, "run-a", "ann", &[]).await;
    console.launch_as(&b.task, "run-b", "bob", &[]).await;
    console.report("run-b", Phase::Running).await;
    console.report("run-b", Phase::Succeeded).await;

    for uri in [
        "/console/projects/flytesnacks",
        "/console/projects/flytesnacks/dashboard?domain=development",
        "/console/projects/flytesnacks/domains/development",
    ] {
        let html = console.page(uri).await;
        assert_eq!(execution_rows(&html), ["run-b", "run-a"], "{uri}");
        assert_eq!(row_phase(&html, "run-b").as_deref(), Some("SUCCEEDED"));
        assert_eq!(row_phase(&html, "run-a").as_deref(), Some("QUEUED"));
        // run-a has not finished: the table refreshes from the page's own URL.
        assert!(html.contains(&format!("id=\"recent-executions\" data-live=\"{uri}\"")));
        assert_eq!(attribute_values(&html, "data-entity"), ["wf", "t", "lp"]);
        assert!(html.contains("cron 0 * * * *"), "schedule shown");
        assert!(html.contains("data-state=\"ACTIVE\""));
        assert!(html.contains(
            "href=\"/console/projects/flytesnacks/domains/development/launchPlans/lp/launch\""
        ));
        assert!(html.contains("aria-current=\"page\">development<"));
    }
    // Another domain is empty, and the switcher marks it.
    let staging = console
        .page("/console/projects/flytesnacks/domains/staging")
        .await;
    assert!(execution_rows(&staging).is_empty());
    assert!(staging.contains("aria-current=\"page\">staging<"));
}

#[tokio::test]
async fn missing_projects_and_domains_are_404() {
    let console = Console::start().await;
    for uri in [
        "/console/projects/nowhere",
        "/console/projects/nowhere/executions?domain=development",
        "/console/projects/flytesnacks/domains/nodomain",
        "/console/projects/flytesnacks/domains/development/workflows/absent",
        "/console/projects/flytesnacks/workflows?domain=nodomain",
    ] {
        let (status, html) = console.get(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {html}");
    }
}

#[tokio::test]
async fn executions_filter_sort_and_page() {
    let console = Console::start().await;
    let b = console.register_basics("v1", None).await;
    for i in 0..7 {
        let (who, labels): (&str, &[(&str, &str)]) = if i % 2 == 0 {
            ("ann", &[("team", "ml")])
        } else {
            ("bob", &[("team", "web")])
        };
        console
            .launch_as(&b.launch_plan, &format!("lp-{i}"), who, labels)
            .await;
    }
    console.launch_as(&b.task, "task-run", "bob", &[]).await;
    console.report("lp-1", Phase::Running).await;
    console.report("lp-1", Phase::Failed).await;

    let all = console.page(EXECUTIONS).await;
    assert_eq!(execution_rows(&all).len(), 8);
    assert_eq!(execution_rows(&all)[0], "task-run", "newest first");
    assert!(
        all.contains("data-live=\""),
        "queued rows keep the table live"
    );
    // The row links to the execution and names the launch plan and workflow with versions.
    assert!(all.contains(&format!("href=\"{EXECUTIONS}/lp-3\"")));
    assert!(all.contains(
        "href=\"/console/projects/flytesnacks/domains/development/launchPlans/lp/version/v1\""
    ));
    assert!(all.contains("ann"));

    let failed = console.page(&format!("{EXECUTIONS}?phase=FAILED")).await;
    assert_eq!(execution_rows(&failed), ["lp-1"]);
    assert!(!failed.contains("data-live="), "nothing left to refresh");
    assert!(
        failed.contains("value=\"FAILED\" checked"),
        "the form keeps the choice"
    );

    let two_phases = console
        .page(&format!(
            "{EXECUTIONS}?phase=FAILED&phase=QUEUED&launch_plan=lp"
        ))
        .await;
    assert_eq!(execution_rows(&two_phases).len(), 7);

    let by_task = console.page(&format!("{EXECUTIONS}?task=t")).await;
    assert_eq!(execution_rows(&by_task), ["task-run"]);
    let by_user = console.page(&format!("{EXECUTIONS}?user=ann")).await;
    assert_eq!(execution_rows(&by_user), ["lp-6", "lp-4", "lp-2", "lp-0"]);
    let by_label = console
        .page(&format!("{EXECUTIONS}?label=team%3Dweb"))
        .await;
    assert_eq!(execution_rows(&by_label), ["lp-5", "lp-3", "lp-1"]);
    let future = console
        .page(&format!("{EXECUTIONS}?from=2999-01-01T00%3A00"))
        .await;
    assert!(execution_rows(&future).is_empty());
    let past = console
        .page(&format!("{EXECUTIONS}?to=2999-01-01T00%3A00&workflow=wf"))
        .await;
    assert_eq!(execution_rows(&past).len(), 7);

    let by_name = console
        .page(&format!("{EXECUTIONS}?sort=name&order=asc&user=ann"))
        .await;
    assert_eq!(execution_rows(&by_name), ["lp-0", "lp-2", "lp-4", "lp-6"]);

    // Pages of 3, the filters carried along.
    let first = console
        .page(&format!("{EXECUTIONS}?sort=name&order=asc&limit=3"))
        .await;
    assert_eq!(execution_rows(&first), ["lp-0", "lp-1", "lp-2"]);
    let next = next_link(&first).expect("a next page");
    assert_eq!(
        next,
        format!("{EXECUTIONS}?sort=name&amp;order=asc&amp;limit=3&amp;token=3")
    );
    let second = console.page(&next.replace("&amp;", "&")).await;
    assert_eq!(execution_rows(&second), ["lp-3", "lp-4", "lp-5"]);
    assert!(second.contains("rel=\"prev\""));
    let third = console
        .page(&next_link(&second).unwrap().replace("&amp;", "&"))
        .await;
    assert_eq!(execution_rows(&third), ["lp-6", "task-run"]);
    assert_eq!(next_link(&third), None, "no next page after the last row");

    // The query-string form of the URL answers the same list.
    let by_query = console
        .page("/console/projects/flytesnacks/executions?domain=development&phase=FAILED")
        .await;
    assert_eq!(execution_rows(&by_query), ["lp-1"]);
}

fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    Some(html[at..at + html[at..].find('"')?].to_string())
}

#[tokio::test]
async fn refused_filters_are_a_notice_not_an_error() {
    let console = Console::start().await;
    let b = console.register_basics("v1", None).await;
    console.launch_as(&b.launch_plan, "one", "ann", &[]).await;
    let (status, html) = console.get(&format!("{EXECUTIONS}?from=yesterday")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("class=\"notice error\""), "{html}");
    assert!(html.contains("RFC 3339"), "admin's words reach the reader");
    assert!(
        html.contains("value=\"yesterday\""),
        "the form keeps what was typed"
    );
    assert!(execution_rows(&html).is_empty());
}

#[tokio::test]
async fn entity_pages_show_versions_interface_and_runs() {
    let console = Console::start().await;
    let v1 = console.register_basics("v1", None).await;
    let v2 = console.register_basics("v2", Some("*/5 * * * *")).await;
    console.activate(&v2.launch_plan).await;
    console
        .launch_as(&v1.launch_plan, "old-run", "ann", &[])
        .await;
    console
        .launch_as(&v2.launch_plan, "new-run", "ann", &[])
        .await;
    console.launch_as(&v2.task, "task-run", "ann", &[]).await;

    let base = "/console/projects/flytesnacks/domains/development";
    let wf = console.page(&format!("{base}/workflows/wf")).await;
    assert_eq!(attribute_values(&wf, "data-version"), ["v2", "v1"]);
    assert!(wf.contains("<dd class=\"mono\">v2</dd>"), "latest selected");
    // Interface: x: int in, out: int out; the node runs task t.
    assert!(wf.contains("data-direction=\"inputs\""));
    assert!(wf.contains("<tr data-name=\"x\"><td class=\"mono\">x</td><td class=\"mono\">int</td>"));
    assert!(wf.contains("data-node-id=\"n0\""));
    assert!(wf.contains(&format!("href=\"{base}/tasks/t/version/v2\"")));
    assert_eq!(execution_rows(&wf), ["new-run", "old-run"]);
    assert!(wf.contains(&format!("href=\"{base}/launchPlans/lp/version/v2\"")));

    let wf_v1 = console
        .page(&format!("{base}/workflows/wf/version/v1"))
        .await;
    assert!(wf_v1.contains("<dd class=\"mono\">v1</dd>"));
    let by_query = console
        .page("/console/projects/flytesnacks/workflows/wf?domain=development")
        .await;
    assert!(by_query.contains("<dd class=\"mono\">v2</dd>"));

    let lp = console.page(&format!("{base}/launchPlans/lp")).await;
    assert!(lp.contains("cron */5 * * * *"));
    assert!(lp.contains("dd data-state=\"ACTIVE\""));
    assert!(lp.contains("data-name=\"x\""), "the default input is shown");
    assert!(lp.contains(&format!("href=\"{base}/launchPlans/lp/launch?version=v2\"")));
    assert!(lp.contains(&format!("href=\"{base}/workflows/wf/version/v2\"")));
    let lp_v1 = console
        .page(&format!("{base}/launchPlans/lp/version/v1"))
        .await;
    assert!(lp_v1.contains("dd data-state=\"INACTIVE\""));

    let task = console.page(&format!("{base}/tasks/t")).await;
    assert_eq!(execution_rows(&task), ["task-run"]);
    assert!(task.contains("img:1"));

    let missing = console
        .get(&format!("{base}/workflows/wf/version/v9"))
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);

    for (kind, names) in [
        ("workflows", ["wf"]),
        ("tasks", ["t"]),
        ("launchPlans", ["lp"]),
    ] {
        let list = console.page(&format!("{base}/{kind}")).await;
        assert_eq!(attribute_values(&list, "data-entity"), names, "{kind}");
        let query_form = console
            .page(&format!(
                "/console/projects/flytesnacks/{kind}?domain=development"
            ))
            .await;
        assert_eq!(attribute_values(&query_form, "data-entity"), names);
    }
    let searched = console.page(&format!("{base}/workflows?name=zz")).await;
    assert!(attribute_values(&searched, "data-entity").is_empty());
    let searched = console.page(&format!("{base}/workflows?name=w")).await;
    assert_eq!(attribute_values(&searched, "data-entity"), ["wf"]);

    // An archived name leaves the lists but keeps its page.
    console.set_metadata(ResourceType::Task, "t", "", 1).await;
    let tasks = console.page(&format!("{base}/tasks")).await;
    assert!(attribute_values(&tasks, "data-entity").is_empty());
    console.page(&format!("{base}/tasks/t")).await;
}

#[tokio::test]
async fn names_and_descriptions_are_escaped() {
    let console = Console::start().await;
    let b = console.register_basics("v1", None).await;
    console
        .describe(
            ResourceType::Workflow,
            "wf",
            "<script>alert('x')</script> & \"quotes\"",
        )
        .await;
    console
        .launch_as(&b.launch_plan, "run", "<b>mallory</b>", &[])
        .await;
    for uri in [
        "/console/projects/flytesnacks/domains/development",
        "/console/projects/flytesnacks/domains/development/workflows",
        "/console/projects/flytesnacks/domains/development/workflows/wf",
        EXECUTIONS,
    ] {
        let html = console.page(uri).await;
        assert!(!html.contains("<script>alert"), "{uri}");
        assert!(!html.contains("<b>mallory"), "{uri}");
    }
    let list = console
        .page("/console/projects/flytesnacks/domains/development/workflows")
        .await;
    assert!(list.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;quotes&quot;"));
    let runs = console.page(EXECUTIONS).await;
    assert!(runs.contains("&lt;b&gt;mallory&lt;/b&gt;"));
    // A filter value cannot break out of its attribute either.
    let form = console
        .page(&format!("{EXECUTIONS}?workflow=%22%3E%3Cscript%3E"))
        .await;
    assert!(form.contains("value=\"&quot;&gt;&lt;script&gt;\""));
}
