//! ListExecutions filters by who launched an execution (`user`) and by its labels and tags
//! (`execution_tag.key` / `execution_tag.value`, flyteadmin's names), through a real tonic
//! client on both backends; and the list query plans on SQLite stay on indexes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::Store;
use alula_idl::flyteidl::admin::{
    self as admin, execution_metadata::ExecutionMode, ExecutionMetadata, ExecutionRelaunchRequest,
    Labels, NamedEntityIdentifier, ResourceListRequest, Sort,
};
use alula_idl::flyteidl::core::{Identifier, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::admin_service_client::AdminServiceClient;
use common::builders::*;
use common::server::TestServer;
use tonic::transport::Channel;
use tonic::Code;

type Client = AdminServiceClient<Channel>;

async fn register_task(admin: &mut Client) -> Identifier {
    let task = int_task("t", "v1", "img:1");
    let task_id = task.id.clone().unwrap();
    admin.create_task(task_create_request(task)).await.unwrap();
    task_id
}

/// Launches single task `task` as `name` by `principal` with `labels`.
async fn launch(
    admin: &mut Client,
    task: &Identifier,
    name: &str,
    principal: &str,
    labels: &[(&str, &str)],
) {
    // int_task takes one integer, `a`.
    let inputs = literals(&[("a", int_literal(1))]);
    admin
        .create_execution(admin::ExecutionCreateRequest {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            spec: Some(admin::ExecutionSpec {
                launch_plan: Some(task.clone()),
                metadata: Some(ExecutionMetadata {
                    mode: ExecutionMode::Manual as i32,
                    principal: principal.into(),
                    ..Default::default()
                }),
                labels: Some(Labels {
                    values: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }),
                ..Default::default()
            }),
            inputs: Some(inputs),
            org: String::new(),
        })
        .await
        .unwrap();
}

async fn list(admin: &mut Client, filters: &str) -> Result<Vec<String>, tonic::Status> {
    let page = admin
        .list_executions(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                ..Default::default()
            }),
            limit: 100,
            filters: filters.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut names: Vec<String> = page
        .executions
        .into_iter()
        .map(|e| e.id.unwrap().name)
        .collect();
    names.sort();
    Ok(names)
}

async fn filters_by_user_and_label_narrow_the_list(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = Client::connect(s.grpc_url.clone()).await.unwrap();
    let task = register_task(&mut admin).await;
    launch(
        &mut admin,
        &task,
        "a1",
        "alice",
        &[("team", "ml"), ("env", "prod")],
    )
    .await;
    launch(&mut admin, &task, "a2", "alice", &[("team", "data")]).await;
    launch(&mut admin, &task, "b1", "bob", &[("team", "ml")]).await;
    launch(&mut admin, &task, "b2", "bob", &[]).await;

    assert_eq!(
        list(&mut admin, "").await.unwrap(),
        ["a1", "a2", "b1", "b2"]
    );
    assert_eq!(
        list(&mut admin, "eq(user,alice)").await.unwrap(),
        ["a1", "a2"]
    );
    assert_eq!(
        list(&mut admin, "eq(execution.user,bob)").await.unwrap(),
        ["b1", "b2"]
    );
    // A label key, then key=value as flyteadmin's join reads it (both on the same tag row).
    assert_eq!(
        list(&mut admin, "eq(execution_tag.key,team)")
            .await
            .unwrap(),
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        list(
            &mut admin,
            "eq(execution_tag.key,team)+eq(execution_tag.value,ml)"
        )
        .await
        .unwrap(),
        ["a1", "b1"]
    );
    // env=ml exists on no execution even though env and ml each do.
    assert!(list(
        &mut admin,
        "eq(execution_tag.key,env)+eq(execution_tag.value,ml)"
    )
    .await
    .unwrap()
    .is_empty());
    // Label and column filters combine.
    assert_eq!(
        list(
            &mut admin,
            "eq(user,bob)+eq(execution_tag.key,team)+eq(execution_tag.value,ml)"
        )
        .await
        .unwrap(),
        ["b1"]
    );
    assert_eq!(
        list(&mut admin, "value_in(execution_tag.value,data;prod)")
            .await
            .unwrap(),
        ["a1", "a2"]
    );
    // An execution with two matching labels is listed once.
    assert_eq!(
        list(&mut admin, "value_in(execution_tag.key,team;env)")
            .await
            .unwrap(),
        ["a1", "a2", "b1"]
    );
    assert!(list(&mut admin, "eq(user,carol)").await.unwrap().is_empty());

    // A relaunch carries the original's principal and labels.
    admin
        .relaunch_execution(ExecutionRelaunchRequest {
            id: Some(WorkflowExecutionIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: "b1".into(),
                org: String::new(),
            }),
            name: "b1-again".into(),
            overwrite_cache: false,
        })
        .await
        .unwrap();
    assert_eq!(
        list(&mut admin, "eq(user,bob)+eq(execution_tag.value,ml)")
            .await
            .unwrap(),
        ["b1", "b1-again"]
    );
}

async fn bad_filters_are_invalid_argument(store: Store) {
    let s = TestServer::start(store).await;
    let mut admin = Client::connect(s.grpc_url.clone()).await.unwrap();
    for bad in [
        "eq(users,alice)",
        "eq(execution_tag.colour,red)",
        "eq(execution_tag.key)",
        "like(user,alice)",
        "gt(user",
    ] {
        let err = list(&mut admin, bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err:?}");
    }
    // A label is no order.
    let err = admin
        .list_executions(ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                ..Default::default()
            }),
            limit: 10,
            sort_by: Some(Sort {
                key: "execution_tag.key".into(),
                direction: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("execution_tag.key"), "{err:?}");
}

/// The plans SQLite picks for the console's common lists (the shapes `list_executions`
/// builds): each walks an index in the list's order, with no sort of the whole project.
#[tokio::test]
async fn sqlite_list_plans_stay_on_indexes() {
    use sqlx::Row;
    let dir = std::env::temp_dir().join(format!("alula-plans-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("db").display());
    let store = Store::connect(&url).await.unwrap();
    store.close().await;
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let select = "SELECT name, spec, closure FROM executions WHERE project = 'p' AND domain = 'd'";
    let tags = " AND name IN (SELECT execution_tags.name FROM execution_tags WHERE project = 'p' \
                AND domain = 'd' AND tag_key = 'team' AND tag_value = 'ml')";
    for (filters, index) in [
        ("", "executions_created_at"),
        (" AND phase = 'FAILED'", "executions_phase"),
        (" AND workflow_name = 'wf'", "executions_workflow"),
        (" AND launch_plan_name = 'lp'", "executions_launch_plan"),
        (" AND task_name = 't'", "executions_task"),
        (" AND principal = 'alice'", "executions_principal"),
        (tags, "execution_tags_by_tag"),
    ] {
        for order in [
            " ORDER BY created_at DESC, name DESC",
            " ORDER BY created_at ASC, name ASC",
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {select}{filters}{order} LIMIT 26 OFFSET 5000");
            let plan: Vec<String> = sqlx::query(&sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap())
                .collect();
            let text = plan.join(" | ");
            assert!(text.contains(index), "{sql}: {text}");
            assert!(!text.contains("SCAN executions"), "{sql}: {text}");
            if filters != tags {
                assert!(!text.contains("TEMP B-TREE"), "{sql}: {text}");
            }
        }
    }
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_backends!(
    filters_by_user_and_label_narrow_the_list,
    bad_filters_are_invalid_argument,
);
