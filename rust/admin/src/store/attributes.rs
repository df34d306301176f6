//! Matchable attributes: `admin.MatchingAttributes` bytes keyed by resource type and level
//! (project, project-domain, workflow).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{Store, StoreError};

/// Where a set of attributes applies. Empty strings mark the levels above the one stored
/// (a project-level key has empty `domain` and `workflow`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttributesKey {
    pub resource_type: i64,
    pub org: String,
    pub project: String,
    pub domain: String,
    pub workflow: String,
    pub launch_plan: String,
}

const COLUMNS: &str = "resource_type, org, project, domain, workflow, launch_plan";

fn key_condition(sql: &mut Sql, key: &AttributesKey) {
    sql.push(" WHERE resource_type = ")
        .bind(key.resource_type)
        .push(" AND org = ")
        .bind(key.org.as_str())
        .push(" AND project = ")
        .bind(key.project.as_str())
        .push(" AND domain = ")
        .bind(key.domain.as_str())
        .push(" AND workflow = ")
        .bind(key.workflow.as_str())
        .push(" AND launch_plan = ")
        .bind(key.launch_plan.as_str());
}

fn decode(row: &AnyRow) -> Result<(AttributesKey, Vec<u8>), sqlx::Error> {
    Ok((
        AttributesKey {
            resource_type: row.try_get("resource_type")?,
            org: row.try_get("org")?,
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            workflow: row.try_get("workflow")?,
            launch_plan: row.try_get("launch_plan")?,
        },
        row.try_get("attributes")?,
    ))
}

impl Store {
    /// Creates or replaces the attributes stored under `key`.
    pub async fn put_attributes(
        &self,
        key: &AttributesKey,
        attributes: Vec<u8>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(&format!(
            "INSERT INTO matchable_attributes ({COLUMNS}, attributes, updated_at) VALUES ("
        ));
        sql.bind(key.resource_type)
            .push(", ")
            .bind(key.org.as_str())
            .push(", ")
            .bind(key.project.as_str())
            .push(", ")
            .bind(key.domain.as_str())
            .push(", ")
            .bind(key.workflow.as_str())
            .push(", ")
            .bind(key.launch_plan.as_str())
            .push(", ")
            .bind(attributes)
            .push(", ")
            .bind(now)
            .push(&format!(
                ") ON CONFLICT ({COLUMNS}) DO UPDATE SET attributes = excluded.attributes, \
                 updated_at = excluded.updated_at"
            ));
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    pub async fn get_attributes(&self, key: &AttributesKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut sql = Sql::new("SELECT attributes FROM matchable_attributes");
        key_condition(&mut sql, key);
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("attributes")).transpose()?)
    }

    /// Returns false when nothing was stored under `key`.
    pub async fn delete_attributes(&self, key: &AttributesKey) -> Result<bool, StoreError> {
        let mut sql = Sql::new("DELETE FROM matchable_attributes");
        key_condition(&mut sql, key);
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Every stored attribute, of any resource type, that can apply to `workflow` in
    /// `project`/`domain`: its workflow, project-domain and project levels (one query, for
    /// CreateExecution to resolve an execution's settings).
    pub async fn applicable_attributes(
        &self,
        org: &str,
        project: &str,
        domain: &str,
        workflow: &str,
    ) -> Result<Vec<(AttributesKey, Vec<u8>)>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS}, attributes FROM matchable_attributes WHERE org = "
        ));
        sql.bind(org)
            .push(" AND project = ")
            .bind(project)
            .push(" AND (domain = ")
            .bind(domain)
            .push(" OR domain = '') AND (workflow = ")
            .bind(workflow)
            .push(" OR workflow = '') AND launch_plan = ''");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Every level stored for one resource type and org, most general first.
    pub async fn list_attributes(
        &self,
        resource_type: i64,
        org: &str,
    ) -> Result<Vec<(AttributesKey, Vec<u8>)>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS}, attributes FROM matchable_attributes WHERE resource_type = "
        ));
        sql.bind(resource_type)
            .push(" AND org = ")
            .bind(org)
            .push(" ORDER BY project, domain, workflow, launch_plan");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }
}
