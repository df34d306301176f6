//! Role bindings and the audit log on both backends (the queries are portable SQL; the upsert
//! and the audit ids differ most between SQLite and PostgreSQL).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::store::AuditEntry;
use alula_admin::Store;
use alula_auth::{Role, Subject};

async fn bindings_are_upserted_listed_and_deleted(store: Store) {
    let ci = Subject::Client("ci".into());
    let ml = Subject::Group("ml".into());
    store
        .put_role_binding(&ci, "flytesnacks", "*", Role::Viewer)
        .await
        .unwrap();
    store
        .put_role_binding(&ci, "flytesnacks", "*", Role::Runner)
        .await
        .unwrap();
    store
        .put_role_binding(&ml, "*", "*", Role::Developer)
        .await
        .unwrap();
    let bindings = store.role_bindings().await.unwrap();
    let summary: Vec<(String, String, Role)> = bindings
        .iter()
        .map(|b| (b.subject.to_string(), b.project.clone(), b.role))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("client:ci".into(), "flytesnacks".into(), Role::Runner),
            ("group:ml".into(), "*".into(), Role::Developer),
        ]
    );
    assert!(store.delete_role_binding(&ml, "*", "*").await.unwrap());
    assert!(!store.delete_role_binding(&ml, "*", "*").await.unwrap());
    assert_eq!(store.role_bindings().await.unwrap().len(), 1);
}

async fn audit_entries_page_newest_first(store: Store) {
    for (at, project) in [(1, "a"), (2, "b"), (3, "a")] {
        store
            .append_audit(&AuditEntry {
                at,
                principal: "client:ci".into(),
                method: "/flyteidl.service.AdminService/CreateTask".into(),
                project: project.into(),
                domain: "development".into(),
                resource: "task".into(),
                code: "OK".into(),
                message: String::new(),
            })
            .await
            .unwrap();
    }
    let first = store.audit_entries(Some("a"), 1, None).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].entry.at, 3);
    let next = store
        .audit_entries(Some("a"), 10, Some(first[0].id))
        .await
        .unwrap();
    assert_eq!(next.iter().map(|r| r.entry.at).collect::<Vec<_>>(), vec![1]);
    assert_eq!(store.audit_entries(None, 10, None).await.unwrap().len(), 3);
}

on_both_backends!(
    bindings_are_upserted_listed_and_deleted,
    audit_entries_page_newest_first
);
