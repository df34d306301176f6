//! CreateTask, GetTask, ListTasks, ListTaskIds.

use alula_compiler::compile_task;
use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    NamedEntityIdentifierList, NamedEntityIdentifierListRequest, ObjectGetRequest,
    ResourceListRequest, Task, TaskClosure, TaskCreateRequest, TaskCreateResponse, TaskList,
    TaskSpec,
};
use prost::Message;

use super::{
    decode, entity_id, list_params, named_id, registration_conflict, sha256, timestamp, typed_id,
    AdminApi,
};
use crate::error::{AdminError, AdminResult};
use crate::store::query::Param;
use crate::store::{now_micros, Entity, EntityKey, EntityRow, InsertOutcome};

const ENTITY: Entity = Entity::Task;

fn task_of(row: &EntityRow) -> AdminResult<Task> {
    let what = || format!("task {}", IdDisplay(&row.key.identifier(ENTITY)));
    let closure: TaskClosure = decode(&row.closure, what)?;
    let spec: TaskSpec = decode(&row.spec, what)?;
    Ok(Task {
        id: Some(row.key.identifier(ENTITY)),
        closure: Some(closure),
        short_description: spec
            .description
            .map(|d| d.short_description)
            .unwrap_or_default(),
    })
}

impl AdminApi {
    pub(crate) async fn create_task(
        &self,
        req: TaskCreateRequest,
    ) -> AdminResult<TaskCreateResponse> {
        let id = typed_id(entity_id(req.id.as_ref(), ENTITY)?, ENTITY);
        self.check_project_domain(&id.project, &id.domain).await?;
        let spec = req.spec.ok_or_else(|| {
            AdminError::invalid(format!("missing spec of task {}", IdDisplay(&id)))
        })?;
        let mut template = spec.template.clone().ok_or_else(|| {
            AdminError::invalid(format!("missing spec.template of task {}", IdDisplay(&id)))
        })?;
        // The request id is authoritative, as in flyteadmin.
        template.id = Some(id.clone());
        let compiled = compile_task(&template).map_err(|errors| AdminError::Compile {
            entity: format!("task {}", IdDisplay(&id)),
            errors,
        })?;
        // A task no plugin of this deployment runs is refused now, not at its first attempt.
        self.served.check(&template).map_err(AdminError::invalid)?;
        let now = now_micros();
        let key = EntityKey::from(&id);
        let short_description = spec
            .description
            .as_ref()
            .map(|d| d.short_description.clone())
            .unwrap_or_default();
        let row = EntityRow {
            key: key.clone(),
            digest: sha256(&compiled.encode_to_vec()),
            spec: spec.encode_to_vec(),
            closure: TaskClosure {
                compiled_task: Some(compiled.clone()),
                created_at: Some(timestamp(now)),
            }
            .encode_to_vec(),
            state: 0,
            created_at: now,
            updated_at: now,
        };
        let extra = [
            ("task_type", Param::from(template.r#type.as_str())),
            ("short_description", Param::from(short_description)),
        ];
        match self.store.insert_entity(ENTITY, &row, &extra).await? {
            InsertOutcome::Inserted => {
                if let Some(description) = &spec.description {
                    self.store
                        .insert_description_entity(ENTITY, &key, &with_id(description, &id), now)
                        .await?;
                }
                Ok(TaskCreateResponse {})
            }
            InsertOutcome::Exists(existing) => {
                let old = task_of(&existing)?.closure.and_then(|c| c.compiled_task);
                Err(registration_conflict(
                    ENTITY,
                    &key,
                    existing.digest == row.digest,
                    &old,
                    &Some(compiled),
                ))
            }
        }
    }

    pub(crate) async fn get_task(&self, req: ObjectGetRequest) -> AdminResult<Task> {
        let id = entity_id(req.id.as_ref(), ENTITY)?;
        let row = self
            .store
            .get_entity(ENTITY, &EntityKey::from(id))
            .await?
            .ok_or_else(|| AdminError::not_found(format!("task {} not found", IdDisplay(id))))?;
        task_of(&row)
    }

    pub(crate) async fn list_tasks(&self, req: ResourceListRequest) -> AdminResult<TaskList> {
        let (rows, token) = self.list_versions(ENTITY, &req).await?;
        Ok(TaskList {
            tasks: rows.iter().map(task_of).collect::<AdminResult<_>>()?,
            token,
        })
    }

    pub(crate) async fn list_task_ids(
        &self,
        req: NamedEntityIdentifierListRequest,
    ) -> AdminResult<NamedEntityIdentifierList> {
        self.list_ids(ENTITY, req).await
    }

    /// The `ListTasks`/`ListWorkflows`/`ListLaunchPlans` query: versions in a project/domain,
    /// of one name when the request names one.
    pub(super) async fn list_versions(
        &self,
        entity: Entity,
        req: &ResourceListRequest,
    ) -> AdminResult<(Vec<EntityRow>, String)> {
        let id = named_id(req.id.as_ref(), false)?;
        let list = list_params(
            entity.fields(),
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let mut scope = vec![
            ("project", Param::from(id.project.as_str())),
            ("domain", Param::from(id.domain.as_str())),
        ];
        if !id.name.is_empty() {
            scope.push(("name", Param::from(id.name.as_str())));
        }
        let rows = self.store.list_entities(entity, &scope, &list).await?;
        let token = list.next_token(rows.len());
        Ok((rows, token))
    }
}

/// The description entity as stored: with the id of the entity it documents.
pub(super) fn with_id(
    description: &alula_idl::flyteidl::admin::DescriptionEntity,
    id: &alula_idl::flyteidl::core::Identifier,
) -> alula_idl::flyteidl::admin::DescriptionEntity {
    alula_idl::flyteidl::admin::DescriptionEntity {
        id: Some(id.clone()),
        ..description.clone()
    }
}
