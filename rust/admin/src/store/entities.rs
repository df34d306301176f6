//! Tasks, workflows and launch plans: versioned entities keyed by project/domain/name/version,
//! stored as protobuf bytes with a digest of what registration compiled.

use std::sync::atomic::{AtomicU64, Ordering};

use alula_idl::flyteidl::core::{Identifier, ResourceType};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Executor, Row};

use super::query::{Param, Sql};
use super::{Backend, Store, StoreError};
use crate::list::{Field, FieldKind, FieldSet, ListParams};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Task,
    Workflow,
    LaunchPlan,
}

const fn field(name: &'static str, column: &'static str, kind: FieldKind) -> Field {
    Field { name, column, kind }
}

const COMMON: [Field; 5] = [
    field("project", "project", FieldKind::Text),
    field("domain", "domain", FieldKind::Text),
    field("name", "name", FieldKind::Text),
    field("version", "version", FieldKind::Text),
    field("created_at", "created_at", FieldKind::Timestamp),
];

static TASK_FIELDS: FieldSet = FieldSet {
    entity: "task",
    fields: &[
        COMMON[0],
        COMMON[1],
        COMMON[2],
        COMMON[3],
        COMMON[4],
        field("type", "task_type", FieldKind::Text),
    ],
    default_sort: "created_at",
    default_ascending: false,
};

static WORKFLOW_FIELDS: FieldSet = FieldSet {
    entity: "workflow",
    fields: &COMMON,
    default_sort: "created_at",
    default_ascending: false,
};

static LAUNCH_PLAN_FIELDS: FieldSet = FieldSet {
    entity: "launch_plan",
    fields: &[
        COMMON[0],
        COMMON[1],
        COMMON[2],
        COMMON[3],
        COMMON[4],
        field("updated_at", "updated_at", FieldKind::Timestamp),
        field("state", "state", FieldKind::Integer),
        field("workflow.name", "workflow_name", FieldKind::Text),
        field("workflow.version", "workflow_version", FieldKind::Text),
    ],
    default_sort: "created_at",
    default_ascending: false,
};

/// The fields of the `List*Ids` RPCs, which list distinct names.
pub static NAME_FIELDS: FieldSet = FieldSet {
    entity: "entity",
    fields: &[field("name", "name", FieldKind::Text)],
    default_sort: "name",
    default_ascending: true,
};

impl Entity {
    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Task => "tasks",
            Self::Workflow => "workflows",
            Self::LaunchPlan => "launch_plans",
        }
    }

    pub fn fields(self) -> &'static FieldSet {
        match self {
            Self::Task => &TASK_FIELDS,
            Self::Workflow => &WORKFLOW_FIELDS,
            Self::LaunchPlan => &LAUNCH_PLAN_FIELDS,
        }
    }

    /// The entity's name in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Workflow => "workflow",
            Self::LaunchPlan => "launch plan",
        }
    }

    pub fn resource_type(self) -> ResourceType {
        match self {
            Self::Task => ResourceType::Task,
            Self::Workflow => ResourceType::Workflow,
            Self::LaunchPlan => ResourceType::LaunchPlan,
        }
    }

    pub fn of_resource_type(rt: i32) -> Option<Self> {
        match ResourceType::try_from(rt).ok()? {
            ResourceType::Task => Some(Self::Task),
            ResourceType::Workflow => Some(Self::Workflow),
            ResourceType::LaunchPlan => Some(Self::LaunchPlan),
            _ => None,
        }
    }
}

/// Inserts since startup from which an entity table is analyzed (then at every doubling).
const FIRST_ANALYZE_AT: u64 = 64;

/// Keeps PostgreSQL's statistics of the entity tables current as they grow.
///
/// PostgreSQL picks a lookup's index from table statistics, and a table that has only grown
/// since it was last analyzed (autovacuum off, or its first minute) has none. Without them the
/// planner rates `(project, domain, created_at)` as good as the primary key for a lookup by full
/// key, and caches that plan on every pooled connection; each CreateWorkflow then reads every
/// version in the project and domain to find each task it uses, and registration slows down as
/// versions accumulate (about 300/s with a few thousand task versions, CPU-bound in PostgreSQL).
/// So the store analyzes a table itself when its inserts reach 64, 128, 256, ...: a handful of
/// cheap ANALYZEs over a process's life, each of which also invalidates the cached plans.
#[derive(Debug, Default)]
pub(super) struct EntityGrowth {
    inserts: [AtomicU64; 3],
}

impl EntityGrowth {
    /// Counts one insert into `entity`'s table; true when the table should be analyzed now.
    fn inserted(&self, entity: Entity) -> bool {
        let n = self.inserts[entity as usize].fetch_add(1, Ordering::Relaxed) + 1;
        n >= FIRST_ANALYZE_AT && n.is_power_of_two()
    }
}

/// Analyzes `entity`'s table in the background: the registration that crossed the threshold
/// need not wait for it, and a failure only leaves the statistics as they were.
fn analyze_in_background(pool: AnyPool, entity: Entity) {
    tokio::spawn(async move {
        let table = entity.table();
        if let Err(error) = pool.execute(format!("ANALYZE {table}").as_str()).await {
            tracing::warn!(%error, table, "refreshing the table's statistics failed");
        }
    });
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EntityKey {
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
}

impl EntityKey {
    pub fn identifier(&self, entity: Entity) -> Identifier {
        Identifier {
            resource_type: entity.resource_type() as i32,
            project: self.project.clone(),
            domain: self.domain.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            org: String::new(),
        }
    }
}

impl From<&Identifier> for EntityKey {
    fn from(id: &Identifier) -> Self {
        Self {
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
            version: id.version.clone(),
        }
    }
}

/// One stored version. `spec` and `closure` are the encoded admin messages of the entity
/// (`TaskSpec`/`TaskClosure`, `WorkflowSpec`/`WorkflowClosure`,
/// `LaunchPlanSpec`/`LaunchPlanClosure`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityRow {
    pub key: EntityKey,
    pub digest: Vec<u8>,
    pub spec: Vec<u8>,
    pub closure: Vec<u8>,
    /// `LaunchPlanState` for launch plans; 0 otherwise.
    pub state: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The id was taken; the stored row is returned so the caller can compare digests.
    Exists(EntityRow),
}

const COLUMNS: &str =
    "project, domain, name, version, digest, spec, closure, state, created_at, updated_at";
const KEY_ORDER: &str = "project, domain, name, version";

fn decode(row: &AnyRow) -> Result<EntityRow, sqlx::Error> {
    Ok(EntityRow {
        key: EntityKey {
            project: row.try_get("project")?,
            domain: row.try_get("domain")?,
            name: row.try_get("name")?,
            version: row.try_get("version")?,
        },
        digest: row.try_get("digest")?,
        spec: row.try_get("spec")?,
        closure: row.try_get("closure")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts `row` unless its key exists. `extra` fills the entity's own filter columns.
    /// Racing registrations of one id are safe: exactly one inserts, the others see its row.
    pub async fn insert_entity(
        &self,
        entity: Entity,
        row: &EntityRow,
        extra: &[(&'static str, Param)],
    ) -> Result<InsertOutcome, StoreError> {
        let mut sql = Sql::new(&format!("INSERT INTO {} ({COLUMNS}", entity.table()));
        for (column, _) in extra {
            sql.push(", ").push(column);
        }
        sql.push(") VALUES (");
        let k = &row.key;
        let values: [Param; 10] = [
            k.project.as_str().into(),
            k.domain.as_str().into(),
            k.name.as_str().into(),
            k.version.as_str().into(),
            row.digest.clone().into(),
            row.spec.clone().into(),
            row.closure.clone().into(),
            row.state.into(),
            row.created_at.into(),
            row.updated_at.into(),
        ];
        for (i, v) in values
            .into_iter()
            .chain(extra.iter().map(|(_, p)| p.clone()))
            .enumerate()
        {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(v);
        }
        sql.push(") ON CONFLICT DO NOTHING");
        if sql.query().execute(&self.pool).await?.rows_affected() == 1 {
            if self.backend == Backend::Postgres && self.entity_growth.inserted(entity) {
                analyze_in_background(self.pool.clone(), entity);
            }
            return Ok(InsertOutcome::Inserted);
        }
        match self.get_entity(entity, k).await? {
            Some(existing) => Ok(InsertOutcome::Exists(existing)),
            // Only a concurrent delete could get here, and admin never deletes entities.
            None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
        }
    }

    pub async fn get_entity(
        &self,
        entity: Entity,
        key: &EntityKey,
    ) -> Result<Option<EntityRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM {} WHERE project = ",
            entity.table()
        ));
        sql.bind(key.project.as_str())
            .push(" AND domain = ")
            .bind(key.domain.as_str())
            .push(" AND name = ")
            .bind(key.name.as_str())
            .push(" AND version = ")
            .bind(key.version.as_str());
        let row = sql.query().fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(decode).transpose()?)
    }

    /// Versions in `project`/`domain` matching every `scope` equality (`name`, `state`, ...)
    /// and the list's filters, in the list's order.
    pub async fn list_entities(
        &self,
        entity: Entity,
        scope: &[(&'static str, Param)],
        list: &ListParams,
    ) -> Result<Vec<EntityRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM {} WHERE 1 = 1",
            entity.table()
        ));
        for (column, value) in scope {
            sql.push(" AND ")
                .push(column)
                .push(" = ")
                .bind(value.clone());
        }
        sql.push_list(list, KEY_ORDER);
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Distinct names of an entity in a project/domain (the `List*Ids` RPCs).
    pub async fn list_entity_names(
        &self,
        entity: Entity,
        project: &str,
        domain: &str,
        list: &ListParams,
    ) -> Result<Vec<String>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT DISTINCT name FROM {} WHERE project = ",
            entity.table()
        ));
        sql.bind(project).push(" AND domain = ").bind(domain);
        sql.push_list(list, "name");
        let rows = sql.query().fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?)
    }

    /// Makes `key` the one active version of its launch plan (`active`), or deactivates it.
    /// Returns false when the launch plan does not exist.
    pub async fn set_launch_plan_state(
        &self,
        key: &EntityKey,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if active {
            let mut others = Sql::new("UPDATE launch_plans SET state = 0, updated_at = ");
            others
                .bind(now)
                .push(" WHERE state = 1 AND project = ")
                .bind(key.project.as_str())
                .push(" AND domain = ")
                .bind(key.domain.as_str())
                .push(" AND name = ")
                .bind(key.name.as_str())
                .push(" AND version <> ")
                .bind(key.version.as_str());
            others.query().execute(&mut *tx).await?;
        }
        let mut this = Sql::new("UPDATE launch_plans SET state = ");
        this.bind(i64::from(active))
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE project = ")
            .bind(key.project.as_str())
            .push(" AND domain = ")
            .bind(key.domain.as_str())
            .push(" AND name = ")
            .bind(key.name.as_str())
            .push(" AND version = ")
            .bind(key.version.as_str());
        let found = this.query().execute(&mut *tx).await?.rows_affected() == 1;
        if found {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_analyzed_at_each_doubling_from_the_first_threshold() {
        let growth = EntityGrowth::default();
        let analyzed: Vec<u64> = (1..=300)
            .filter(|_| growth.inserted(Entity::Task))
            .collect();
        assert_eq!(analyzed, vec![64, 128, 256]);
        // Each table counts its own inserts.
        assert!(!(1..FIRST_ANALYZE_AT).any(|_| growth.inserted(Entity::Workflow)));
        assert!(growth.inserted(Entity::Workflow));
    }
}
