//! Named entities (the name of a task, workflow or launch plan across its versions, with
//! user-editable metadata) and description entities (documentation registered per version).

use alula_idl::flyteidl::admin::DescriptionEntity;
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::entities::{Entity, EntityKey};
use super::query::Sql;
use super::{Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, ListParams};

/// A name with its metadata; names without a metadata row are active with no description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedEntityRow {
    pub name: String,
    pub description: String,
    /// `NamedEntityState`: 0 active, 1 archived, 2 system generated.
    pub state: i64,
}

pub static NAMED_ENTITY_FIELDS: FieldSet = FieldSet {
    entity: "named_entity",
    fields: &[
        Field {
            name: "name",
            column: "e.name",
            kind: FieldKind::Text,
        },
        Field {
            name: "description",
            column: "COALESCE(m.description, '')",
            kind: FieldKind::Text,
        },
        Field {
            name: "state",
            column: "COALESCE(m.state, 0)",
            kind: FieldKind::Integer,
        },
    ],
    default_sort: "name",
    default_ascending: true,
};

pub static DESCRIPTION_FIELDS: FieldSet = FieldSet {
    entity: "description_entity",
    fields: &[
        Field {
            name: "name",
            column: "name",
            kind: FieldKind::Text,
        },
        Field {
            name: "version",
            column: "version",
            kind: FieldKind::Text,
        },
        Field {
            name: "short_description",
            column: "short_description",
            kind: FieldKind::Text,
        },
        Field {
            name: "created_at",
            column: "created_at",
            kind: FieldKind::Timestamp,
        },
    ],
    default_sort: "created_at",
    default_ascending: false,
};

fn decode_named(row: &AnyRow) -> Result<NamedEntityRow, sqlx::Error> {
    Ok(NamedEntityRow {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        state: row.try_get("state")?,
    })
}

fn decode_description(row: &AnyRow) -> Result<DescriptionEntity, StoreError> {
    let bytes: Vec<u8> = row.try_get("entity")?;
    let name: String = row.try_get("name")?;
    DescriptionEntity::decode(bytes.as_slice()).map_err(|source| StoreError::Corrupt {
        what: format!("description entity of {name:?}"),
        source,
    })
}

impl Store {
    /// Selects the names of `entity` in `project`/`domain` joined with their metadata; `name`
    /// narrows it to one name. Callers append filters and ordering.
    fn named_entities_sql(entity: Entity, project: &str, domain: &str, name: Option<&str>) -> Sql {
        let mut sql = Sql::new(&format!(
            "SELECT e.name AS name, COALESCE(m.description, '') AS description, COALESCE(m.state, 0) AS state \
             FROM (SELECT DISTINCT name FROM {} WHERE project = ",
            entity.table()
        ));
        sql.bind(project).push(" AND domain = ").bind(domain);
        if let Some(name) = name {
            sql.push(" AND name = ").bind(name);
        }
        sql.push(") e LEFT JOIN named_entity_metadata m ON m.resource_type = ")
            .bind(entity.resource_type() as i64)
            .push(" AND m.project = ")
            .bind(project)
            .push(" AND m.domain = ")
            .bind(domain)
            .push(" AND m.name = e.name WHERE 1 = 1");
        sql
    }

    pub async fn list_named_entities(
        &self,
        entity: Entity,
        project: &str,
        domain: &str,
        list: &ListParams,
    ) -> Result<Vec<NamedEntityRow>, StoreError> {
        let mut sql = Self::named_entities_sql(entity, project, domain, None);
        sql.push_list(list, "e.name");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode_named).collect::<Result<_, _>>()?)
    }

    /// `None` when no version of `name` is registered.
    pub async fn get_named_entity(
        &self,
        entity: Entity,
        project: &str,
        domain: &str,
        name: &str,
    ) -> Result<Option<NamedEntityRow>, StoreError> {
        let sql = Self::named_entities_sql(entity, project, domain, Some(name));
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode_named).transpose()?)
    }

    pub async fn upsert_named_entity_metadata(
        &self,
        entity: Entity,
        project: &str,
        domain: &str,
        row: &NamedEntityRow,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(
            "INSERT INTO named_entity_metadata (resource_type, project, domain, name, description, state) VALUES (",
        );
        sql.bind(entity.resource_type() as i64)
            .push(", ")
            .bind(project)
            .push(", ")
            .bind(domain)
            .push(", ")
            .bind(row.name.as_str())
            .push(", ")
            .bind(row.description.as_str())
            .push(", ")
            .bind(row.state)
            .push(
                ") ON CONFLICT (resource_type, project, domain, name) \
                 DO UPDATE SET description = excluded.description, state = excluded.state",
            );
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Description entities are immutable per version: the first registration wins.
    pub async fn insert_description_entity(
        &self,
        entity: Entity,
        key: &EntityKey,
        description: &DescriptionEntity,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(
            "INSERT INTO description_entities (resource_type, project, domain, name, version, short_description, entity, created_at) VALUES (",
        );
        sql.bind(entity.resource_type() as i64)
            .push(", ")
            .bind(key.project.as_str())
            .push(", ")
            .bind(key.domain.as_str())
            .push(", ")
            .bind(key.name.as_str())
            .push(", ")
            .bind(key.version.as_str())
            .push(", ")
            .bind(description.short_description.as_str())
            .push(", ")
            .bind(description.encode_to_vec())
            .push(", ")
            .bind(now)
            .push(") ON CONFLICT DO NOTHING");
        sql.query().execute(&self.pool).await?;
        Ok(())
    }

    pub async fn get_description_entity(
        &self,
        entity: Entity,
        key: &EntityKey,
    ) -> Result<Option<DescriptionEntity>, StoreError> {
        let mut sql =
            Sql::new("SELECT name, entity FROM description_entities WHERE resource_type = ");
        sql.bind(entity.resource_type() as i64)
            .push(" AND project = ")
            .bind(key.project.as_str())
            .push(" AND domain = ")
            .bind(key.domain.as_str())
            .push(" AND name = ")
            .bind(key.name.as_str())
            .push(" AND version = ")
            .bind(key.version.as_str());
        let row = sql.query().fetch_optional(&self.pool).await?;
        row.as_ref().map(decode_description).transpose()
    }

    pub async fn list_description_entities(
        &self,
        entity: Entity,
        project: &str,
        domain: &str,
        name: Option<&str>,
        list: &ListParams,
    ) -> Result<Vec<DescriptionEntity>, StoreError> {
        let mut sql =
            Sql::new("SELECT name, entity FROM description_entities WHERE resource_type = ");
        sql.bind(entity.resource_type() as i64)
            .push(" AND project = ")
            .bind(project)
            .push(" AND domain = ")
            .bind(domain);
        if let Some(name) = name {
            sql.push(" AND name = ").bind(name);
        }
        sql.push_list(list, "name, version");
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(decode_description).collect()
    }
}
