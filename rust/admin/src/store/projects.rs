//! Projects. Domains are not stored: every project has the domains of the configuration, as in
//! flyteadmin.

use alula_idl::flyteidl::admin::Project;
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::query::Sql;
use super::{Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, ListParams};

pub static PROJECT_FIELDS: FieldSet = FieldSet {
    entity: "project",
    fields: &[
        Field {
            name: "identifier",
            column: "identifier",
            kind: FieldKind::Text,
        },
        Field {
            name: "id",
            column: "identifier",
            kind: FieldKind::Text,
        },
        Field {
            name: "name",
            column: "name",
            kind: FieldKind::Text,
        },
        Field {
            name: "description",
            column: "description",
            kind: FieldKind::Text,
        },
        Field {
            name: "state",
            column: "state",
            kind: FieldKind::Integer,
        },
        Field {
            name: "created_at",
            column: "created_at",
            kind: FieldKind::Timestamp,
        },
    ],
    default_sort: "identifier",
    default_ascending: true,
};

fn decode(row: &AnyRow) -> Result<Project, StoreError> {
    let bytes: Vec<u8> = row.try_get("project")?;
    let id: String = row.try_get("identifier")?;
    Project::decode(bytes.as_slice()).map_err(|source| StoreError::Corrupt {
        what: format!("project {id:?}"),
        source,
    })
}

fn stored(project: &Project) -> Vec<u8> {
    Project {
        domains: Vec::new(),
        ..project.clone()
    }
    .encode_to_vec()
}

impl Store {
    /// Returns false when a project with this id exists already.
    pub async fn insert_project(&self, project: &Project, now: i64) -> Result<bool, StoreError> {
        let mut sql = Sql::new(
            "INSERT INTO projects (identifier, name, description, state, org, project, created_at, updated_at) VALUES (",
        );
        sql.bind(project.id.as_str())
            .push(", ")
            .bind(project.name.as_str())
            .push(", ")
            .bind(project.description.as_str())
            .push(", ")
            .bind(i64::from(project.state))
            .push(", ")
            .bind(project.org.as_str())
            .push(", ")
            .bind(stored(project))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT DO NOTHING");
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Returns false when there is no such project.
    pub async fn update_project(&self, project: &Project, now: i64) -> Result<bool, StoreError> {
        let mut sql = Sql::new("UPDATE projects SET name = ");
        sql.bind(project.name.as_str())
            .push(", description = ")
            .bind(project.description.as_str())
            .push(", state = ")
            .bind(i64::from(project.state))
            .push(", project = ")
            .bind(stored(project))
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE identifier = ")
            .bind(project.id.as_str());
        Ok(sql.query().execute(&self.pool).await?.rows_affected() == 1)
    }

    pub async fn get_project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let mut sql = Sql::new("SELECT identifier, project FROM projects WHERE identifier = ");
        sql.bind(id);
        let row = sql.query().fetch_optional(&self.pool).await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn list_projects(&self, list: &ListParams) -> Result<Vec<Project>, StoreError> {
        let mut sql = Sql::new("SELECT identifier, project FROM projects WHERE 1 = 1");
        sql.push_list(list, "identifier");
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(decode).collect()
    }
}
