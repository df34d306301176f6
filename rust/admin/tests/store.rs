//! The store suite, run on SQLite and on PostgreSQL: the same queries must behave the same.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::list::ListParams;
use alula_admin::store::query::Param;
use alula_admin::store::{
    Entity, EntityKey, EntityRow, ExecutionKey, ExecutionRow, InsertOutcome, NamedEntityRow,
    EXECUTION_FIELDS, NAMED_ENTITY_FIELDS, PROJECT_FIELDS,
};
use alula_admin::Store;
use alula_idl::flyteidl::admin::{sort::Direction, Project, Sort};

fn key(name: &str, version: &str) -> EntityKey {
    EntityKey {
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
        version: version.into(),
    }
}

fn row(name: &str, version: &str, created_at: i64) -> EntityRow {
    EntityRow {
        key: key(name, version),
        digest: vec![1, 2, 3],
        spec: b"spec".to_vec(),
        closure: format!("closure of {name}@{version}").into_bytes(),
        state: 0,
        created_at,
        updated_at: created_at,
    }
}

fn task_extra() -> [(&'static str, Param); 2] {
    [
        ("task_type", Param::from("python-task")),
        ("short_description", Param::from("")),
    ]
}

fn scope() -> Vec<(&'static str, Param)> {
    vec![("project", Param::from("p")), ("domain", Param::from("d"))]
}

fn list(
    entity: Entity,
    filters: &str,
    sort: Option<(&str, Direction)>,
    limit: u32,
    token: &str,
) -> ListParams {
    let sort = sort.map(|(key, d)| Sort {
        key: key.into(),
        direction: d as i32,
    });
    ListParams::parse(entity.fields(), filters, sort.as_ref(), limit, token).unwrap()
}

async fn insert_is_idempotent_and_reports_the_existing_row(store: Store) {
    let first = row("t", "v1", 10);
    let outcome = store
        .insert_entity(Entity::Task, &first, &task_extra())
        .await
        .unwrap();
    assert_eq!(outcome, InsertOutcome::Inserted);
    let mut changed = row("t", "v1", 20);
    changed.digest = vec![9];
    let outcome = store
        .insert_entity(Entity::Task, &changed, &task_extra())
        .await
        .unwrap();
    assert_eq!(outcome, InsertOutcome::Exists(first.clone()));
    assert_eq!(
        store
            .get_entity(Entity::Task, &key("t", "v1"))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .get_entity(Entity::Task, &key("t", "v2"))
            .await
            .unwrap(),
        None
    );
    // Entities of different kinds live apart.
    assert_eq!(
        store
            .get_entity(Entity::Workflow, &key("t", "v1"))
            .await
            .unwrap(),
        None
    );
}

async fn lists_filter_sort_and_paginate(store: Store) {
    for (i, (name, version)) in [
        ("a", "v1"),
        ("a", "v2"),
        ("b", "v1"),
        ("a", "v3"),
        ("c_x", "v1"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = row(name, version, 1_704_067_200_000_000 + i as i64 * 1_000_000);
        store
            .insert_entity(Entity::Task, &r, &task_extra())
            .await
            .unwrap();
    }
    let names = |rows: Vec<EntityRow>| -> Vec<String> {
        rows.into_iter()
            .map(|r| format!("{}@{}", r.key.name, r.key.version))
            .collect()
    };
    // Newest first by default.
    let all = store
        .list_entities(
            Entity::Task,
            &scope(),
            &list(Entity::Task, "", None, 10, ""),
        )
        .await
        .unwrap();
    assert_eq!(names(all), ["c_x@v1", "a@v3", "b@v1", "a@v2", "a@v1"]);

    let page1 = list(
        Entity::Task,
        "eq(name,a)",
        Some(("version", Direction::Ascending)),
        2,
        "",
    );
    let rows = store
        .list_entities(Entity::Task, &scope(), &page1)
        .await
        .unwrap();
    assert_eq!(page1.next_token(rows.len()), "2");
    assert_eq!(names(rows), ["a@v1", "a@v2"]);
    let page2 = list(
        Entity::Task,
        "eq(name,a)",
        Some(("version", Direction::Ascending)),
        2,
        "2",
    );
    let rows = store
        .list_entities(Entity::Task, &scope(), &page2)
        .await
        .unwrap();
    assert_eq!(page2.next_token(rows.len()), "");
    assert_eq!(names(rows), ["a@v3"]);

    let f = "gte(created_at,2024-01-01T00:00:02Z)+ne(name,b)+value_in(version,v1;v3)";
    let rows = store
        .list_entities(Entity::Task, &scope(), &list(Entity::Task, f, None, 10, ""))
        .await
        .unwrap();
    assert_eq!(names(rows), ["c_x@v1", "a@v3"]);

    // `_` is literal in contains(), not a wildcard.
    let rows = store
        .list_entities(
            Entity::Task,
            &scope(),
            &list(Entity::Task, "contains(task.name,_x)", None, 10, ""),
        )
        .await
        .unwrap();
    assert_eq!(names(rows), ["c_x@v1"]);
    let rows = store
        .list_entities(
            Entity::Task,
            &scope(),
            &list(Entity::Task, "contains(name,_)", None, 10, ""),
        )
        .await
        .unwrap();
    assert_eq!(names(rows), ["c_x@v1"]);

    let ids = ListParams::parse(&alula_admin::store::NAME_FIELDS, "", None, 10, "").unwrap();
    let distinct = store
        .list_entity_names(Entity::Task, "p", "d", &ids)
        .await
        .unwrap();
    assert_eq!(distinct, ["a", "b", "c_x"]);
}

async fn one_launch_plan_version_is_active(store: Store) {
    let extra = [
        ("workflow_name", Param::from("wf")),
        ("workflow_version", Param::from("v1")),
    ];
    for v in ["v1", "v2"] {
        store
            .insert_entity(Entity::LaunchPlan, &row("lp", v, 1), &extra)
            .await
            .unwrap();
    }
    let state = |rows: Vec<EntityRow>| -> Vec<(String, i64)> {
        let mut v: Vec<_> = rows.into_iter().map(|r| (r.key.version, r.state)).collect();
        v.sort();
        v
    };
    let all = || list(Entity::LaunchPlan, "", None, 10, "");
    assert!(store
        .set_launch_plan_state(&key("lp", "v1"), true, 5)
        .await
        .unwrap());
    assert!(store
        .set_launch_plan_state(&key("lp", "v2"), true, 6)
        .await
        .unwrap());
    let rows = store
        .list_entities(Entity::LaunchPlan, &scope(), &all())
        .await
        .unwrap();
    assert_eq!(state(rows), [("v1".to_string(), 0), ("v2".to_string(), 1)]);
    let active = store
        .list_entities(
            Entity::LaunchPlan,
            &scope(),
            &list(Entity::LaunchPlan, "eq(state,1)", None, 10, ""),
        )
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].updated_at, 6);
    assert!(store
        .set_launch_plan_state(&key("lp", "v2"), false, 7)
        .await
        .unwrap());
    let rows = store
        .list_entities(Entity::LaunchPlan, &scope(), &all())
        .await
        .unwrap();
    assert_eq!(state(rows), [("v1".to_string(), 0), ("v2".to_string(), 0)]);
    assert!(!store
        .set_launch_plan_state(&key("lp", "v9"), true, 8)
        .await
        .unwrap());
}

async fn projects_round_trip(store: Store) {
    let p = Project {
        id: "p1".into(),
        name: "Project One".into(),
        description: "first".into(),
        ..Default::default()
    };
    assert!(store.insert_project(&p, 1).await.unwrap());
    assert!(!store.insert_project(&p, 2).await.unwrap());
    let updated = Project {
        description: "changed".into(),
        ..p.clone()
    };
    assert!(store.update_project(&updated, 3).await.unwrap());
    assert!(!store
        .update_project(
            &Project {
                id: "nope".into(),
                ..p.clone()
            },
            3
        )
        .await
        .unwrap());
    assert_eq!(store.get_project("p1").await.unwrap(), Some(updated));
    store
        .insert_project(
            &Project {
                id: "p2".into(),
                name: "Two".into(),
                ..Default::default()
            },
            4,
        )
        .await
        .unwrap();
    let l = ListParams::parse(&PROJECT_FIELDS, "contains(name,One)", None, 10, "").unwrap();
    let found: Vec<String> = store
        .list_projects(&l)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(found, ["p1"]);
}

fn execution(name: &str, phase: &str, created_at: i64) -> ExecutionRow {
    ExecutionRow {
        key: ExecutionKey {
            project: "p".into(),
            domain: "d".into(),
            name: name.into(),
        },
        launch_entity: 3,
        launch_plan_name: "lp".into(),
        launch_plan_version: "v1".into(),
        phase: phase.into(),
        spec: b"spec".to_vec(),
        closure: b"closure".to_vec(),
        created_at,
        updated_at: created_at,
        ..Default::default()
    }
}

async fn executions_filter_by_phase_and_change_phase_once(store: Store) {
    assert!(store
        .insert_execution(&execution("e1", "QUEUED", 1))
        .await
        .unwrap());
    assert!(!store
        .insert_execution(&execution("e1", "QUEUED", 2))
        .await
        .unwrap());
    assert!(store
        .insert_execution(&execution("e2", "SUCCEEDED", 3))
        .await
        .unwrap());
    let l = ListParams::parse(
        &EXECUTION_FIELDS,
        "eq(execution.phase,QUEUED)+eq(launch_plan.name,lp)",
        None,
        10,
        "",
    )
    .unwrap();
    let rows = store.list_executions("p", "d", &l).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key.name, "e1");
    let k = rows[0].key.clone();
    assert!(store
        .update_execution_phase(&k, "QUEUED", "ABORTED", b"new".to_vec(), 9)
        .await
        .unwrap());
    // A second writer that read QUEUED loses.
    assert!(!store
        .update_execution_phase(&k, "QUEUED", "RUNNING", b"x".to_vec(), 10)
        .await
        .unwrap());
    let stored = store.get_execution(&k).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.phase.as_str(),
            stored.closure.as_slice(),
            stored.updated_at
        ),
        ("ABORTED", b"new".as_slice(), 9)
    );
}

async fn named_entities_join_their_metadata(store: Store) {
    for (name, v) in [("a", "v1"), ("a", "v2"), ("b", "v1")] {
        store
            .insert_entity(
                Entity::Workflow,
                &row(name, v, 1),
                &[("short_description", Param::from(""))],
            )
            .await
            .unwrap();
    }
    let archived = NamedEntityRow {
        name: "b".into(),
        description: "old".into(),
        state: 1,
    };
    store
        .upsert_named_entity_metadata(Entity::Workflow, "p", "d", &archived)
        .await
        .unwrap();
    let l = ListParams::parse(&NAMED_ENTITY_FIELDS, "", None, 10, "").unwrap();
    let all = store
        .list_named_entities(Entity::Workflow, "p", "d", &l)
        .await
        .unwrap();
    assert_eq!(
        all,
        [
            NamedEntityRow {
                name: "a".into(),
                description: String::new(),
                state: 0
            },
            archived.clone(),
        ]
    );
    let l = ListParams::parse(&NAMED_ENTITY_FIELDS, "eq(state,0)", None, 10, "").unwrap();
    let active = store
        .list_named_entities(Entity::Workflow, "p", "d", &l)
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        store
            .get_named_entity(Entity::Workflow, "p", "d", "b")
            .await
            .unwrap(),
        Some(archived)
    );
    assert_eq!(
        store
            .get_named_entity(Entity::Task, "p", "d", "b")
            .await
            .unwrap(),
        None
    );
}

on_both_backends!(
    insert_is_idempotent_and_reports_the_existing_row,
    lists_filter_sort_and_paginate,
    one_launch_plan_version_is_active,
    projects_round_trip,
    executions_filter_by_phase_and_change_phase_once,
    named_entities_join_their_metadata,
);
