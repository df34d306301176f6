//! Who may do what, as the database keeps it: role bindings made with `alula auth grant` (the
//! server's settings may give more) and the audit log of mutating calls.

use alula_auth::{Binding, Role, Subject};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{now_micros, Store, StoreError};

/// One audited call, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Unix microseconds.
    pub at: i64,
    /// `client:ci`, `user:alice`, `anonymous`.
    pub principal: String,
    /// The full gRPC method (`/flyteidl.service.AdminService/CreateTask`).
    pub method: String,
    /// Empty when the call named none.
    pub project: String,
    pub domain: String,
    pub resource: String,
    /// `OK` or the gRPC code's name (`PERMISSION_DENIED`).
    pub code: String,
    pub message: String,
}

/// An audit entry as read back, with its id (entries come newest first; `before_id` pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

const AUDIT_COLUMNS: &str = "at, principal, method, project, domain, resource, code, message";

fn decode_audit(row: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        entry: AuditEntry {
            at: row.try_get("at")?,
            principal: row.try_get("principal")?,
            method: row.try_get("method")?,
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            resource: row.try_get("resource")?,
            code: row.try_get("code")?,
            message: row.try_get("message")?,
        },
    })
}

impl Store {
    /// Gives `subject` `role` on `project`/`domain` (`*`: all), replacing the role it had there.
    pub async fn put_role_binding(
        &self,
        subject: &Subject,
        project: &str,
        domain: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(
            "INSERT INTO auth_role_bindings (subject, project, domain, role, created_at) VALUES (",
        );
        sql.bind(subject.to_string())
            .push(", ")
            .bind(project)
            .push(", ")
            .bind(domain)
            .push(", ")
            .bind(role.as_str())
            .push(", ")
            .bind(now_micros())
            .push(
                ") ON CONFLICT (subject, project, domain) DO UPDATE SET role = excluded.role, \
                 created_at = excluded.created_at",
            );
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Removes `subject`'s role on exactly `project`/`domain`; false when it had none there.
    pub async fn delete_role_binding(
        &self,
        subject: &Subject,
        project: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new("DELETE FROM auth_role_bindings WHERE subject = ");
        sql.bind(subject.to_string())
            .push(" AND project = ")
            .bind(project)
            .push(" AND domain = ")
            .bind(domain);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() > 0)
    }

    /// Every binding in the database. Rows that no longer parse (a role or subject kind this
    /// version does not know) are skipped with a warning rather than failing every check.
    pub async fn role_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let rows = Sql::new(
            "SELECT subject, project, domain, role FROM auth_role_bindings \
             ORDER BY subject, project, domain",
        )
        .query()
        .fetch_all(&self.pool)
        .await?;
        let mut bindings = Vec::with_capacity(rows.len());
        for row in rows {
            let subject: String = row.try_get("subject")?;
            let role: String = row.try_get("role")?;
            match (Subject::parse(&subject), Role::parse(&role)) {
                (Some(subject), Some(role)) => bindings.push(Binding {
                    subject,
                    project: row.try_get("project")?,
                    domain: row.try_get("domain")?,
                    role,
                }),
                _ => tracing::warn!(%subject, %role, "skipping a role binding that does not parse"),
            }
        }
        Ok(bindings)
    }

    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut sql = Sql::new(&format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ("));
        sql.bind(entry.at)
            .push(", ")
            .bind(entry.principal.as_str())
            .push(", ")
            .bind(entry.method.as_str())
            .push(", ")
            .bind(entry.project.as_str())
            .push(", ")
            .bind(entry.domain.as_str())
            .push(", ")
            .bind(entry.resource.as_str())
            .push(", ")
            .bind(entry.code.as_str())
            .push(", ")
            .bind(entry.message.as_str())
            .push(")");
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Audit entries, newest first: of `project` only when given, at most `limit`, older than
    /// entry `before_id` when given (the next page).
    pub async fn audit_entries(
        &self,
        project: Option<&str>,
        limit: u32,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT id, {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"
        ));
        if let Some(project) = project {
            sql.push(" AND project = ").bind(project);
        }
        if let Some(before) = before_id {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").bind(i64::from(limit));
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_audit).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    #[tokio::test]
    async fn bindings_are_upserted_and_deleted() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ci = Subject::Client("ci".into());
        store
            .put_role_binding(&ci, "flytesnacks", "*", Role::Viewer)
            .await
            .unwrap();
        store
            .put_role_binding(&ci, "flytesnacks", "*", Role::Developer)
            .await
            .unwrap();
        let bindings = store.role_bindings().await.unwrap();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].role, Role::Developer);
        assert!(store
            .delete_role_binding(&ci, "flytesnacks", "*")
            .await
            .unwrap());
        assert!(!store
            .delete_role_binding(&ci, "flytesnacks", "*")
            .await
            .unwrap());
        assert!(store.role_bindings().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn audit_pages_newest_first_by_project() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        for (i, project) in ["a", "b", "a", "a"].into_iter().enumerate() {
            store
                .append_audit(&AuditEntry {
                    at: i as i64,
                    principal: "client:ci".into(),
                    method: "/flyteidl.service.AdminService/CreateTask".into(),
                    project: project.into(),
                    code: "OK".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let page = store.audit_entries(Some("a"), 2, None).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.entry.at).collect::<Vec<_>>(),
            vec![3, 2]
        );
        let next = store
            .audit_entries(Some("a"), 2, Some(page[1].id))
            .await
            .unwrap();
        assert_eq!(next.iter().map(|r| r.entry.at).collect::<Vec<_>>(), vec![0]);
        assert_eq!(store.audit_entries(None, 10, None).await.unwrap().len(), 4);
    }
}
