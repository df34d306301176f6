//! CreateWorkflow (load what the workflow needs, compile, store the compiled closure),
//! GetWorkflow, ListWorkflows, ListWorkflowIds.

use alula_compiler::{compile_workflow, requirements, LaunchPlanInterface};
use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    LaunchPlan, LaunchPlanClosure, LaunchPlanSpec, NamedEntityIdentifierList,
    NamedEntityIdentifierListRequest, ObjectGetRequest, ResourceListRequest, TaskClosure, Workflow,
    WorkflowClosure, WorkflowCreateRequest, WorkflowCreateResponse, WorkflowList, WorkflowSpec,
};
use alula_idl::flyteidl::core::CompiledTask;
use prost::Message;

use super::tasks::with_id;
use super::{decode, entity_id, registration_conflict, sha256, timestamp, typed_id, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::store::query::Param;
use crate::store::{now_micros, Entity, EntityKey, EntityRow, InsertOutcome};

const ENTITY: Entity = Entity::Workflow;

pub(super) fn workflow_of(row: &EntityRow) -> AdminResult<Workflow> {
    let what = || format!("workflow {}", IdDisplay(&row.key.identifier(ENTITY)));
    let closure: WorkflowClosure = decode(&row.closure, what)?;
    let spec: WorkflowSpec = decode(&row.spec, what)?;
    Ok(Workflow {
        id: Some(row.key.identifier(ENTITY)),
        closure: Some(closure),
        short_description: spec
            .description
            .map(|d| d.short_description)
            .unwrap_or_default(),
    })
}

impl AdminApi {
    pub(crate) async fn create_workflow(
        &self,
        req: WorkflowCreateRequest,
    ) -> AdminResult<WorkflowCreateResponse> {
        let id = typed_id(entity_id(req.id.as_ref(), ENTITY)?, ENTITY);
        self.check_project_domain(&id.project, &id.domain).await?;
        let spec = req.spec.ok_or_else(|| {
            AdminError::invalid(format!("missing spec of workflow {}", IdDisplay(&id)))
        })?;
        let mut template = spec.template.clone().ok_or_else(|| {
            AdminError::invalid(format!(
                "missing spec.template of workflow {}",
                IdDisplay(&id)
            ))
        })?;
        template.id = Some(id.clone());

        let needs = requirements(&template, &spec.sub_workflows);
        let mut missing = Vec::new();
        let mut tasks: Vec<CompiledTask> = Vec::new();
        for task_id in &needs.task_ids {
            match self
                .store
                .get_entity(Entity::Task, &EntityKey::from(task_id))
                .await?
            {
                Some(row) => {
                    let closure: TaskClosure =
                        decode(&row.closure, || format!("task {}", IdDisplay(task_id)))?;
                    tasks.extend(closure.compiled_task);
                }
                None => missing.push(format!("task {}", IdDisplay(task_id))),
            }
        }
        let mut launch_plans = Vec::new();
        for lp_id in &needs.launch_plan_ids {
            match self
                .store
                .get_entity(Entity::LaunchPlan, &EntityKey::from(lp_id))
                .await?
            {
                Some(row) => {
                    let what = || format!("launch plan {}", IdDisplay(lp_id));
                    let lp = LaunchPlan {
                        id: Some(row.key.identifier(Entity::LaunchPlan)),
                        spec: Some(decode::<LaunchPlanSpec>(&row.spec, what)?),
                        closure: Some(decode::<LaunchPlanClosure>(&row.closure, what)?),
                    };
                    let interface = LaunchPlanInterface::try_from(&lp)
                        .map_err(|e| AdminError::invalid(e.to_string()))?;
                    launch_plans.push(interface);
                }
                None => missing.push(format!("launch plan {}", IdDisplay(lp_id))),
            }
        }
        if !missing.is_empty() {
            return Err(AdminError::not_found(format!(
                "workflow {} refers to entities that are not registered (register them first): {}",
                IdDisplay(&id),
                missing.join(", ")
            )));
        }
        let compiled = compile_workflow(&template, &spec.sub_workflows, &tasks, &launch_plans)
            .map_err(|errors| AdminError::Compile {
                entity: format!("workflow {}", IdDisplay(&id)),
                errors,
            })?;

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
            closure: WorkflowClosure {
                compiled_workflow: Some(compiled.clone()),
                created_at: Some(timestamp(now)),
            }
            .encode_to_vec(),
            state: 0,
            created_at: now,
            updated_at: now,
        };
        let extra = [("short_description", Param::from(short_description))];
        match self.store.insert_entity(ENTITY, &row, &extra).await? {
            InsertOutcome::Inserted => {
                if let Some(description) = &spec.description {
                    self.store
                        .insert_description_entity(ENTITY, &key, &with_id(description, &id), now)
                        .await?;
                }
                Ok(WorkflowCreateResponse {})
            }
            InsertOutcome::Exists(existing) => {
                let old = workflow_of(&existing)?
                    .closure
                    .and_then(|c| c.compiled_workflow);
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

    pub(crate) async fn get_workflow(&self, req: ObjectGetRequest) -> AdminResult<Workflow> {
        let id = entity_id(req.id.as_ref(), ENTITY)?;
        let row = self
            .store
            .get_entity(ENTITY, &EntityKey::from(id))
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!("workflow {} not found", IdDisplay(id)))
            })?;
        workflow_of(&row)
    }

    pub(crate) async fn list_workflows(
        &self,
        req: ResourceListRequest,
    ) -> AdminResult<WorkflowList> {
        let (rows, token) = self.list_versions(ENTITY, &req).await?;
        Ok(WorkflowList {
            workflows: rows.iter().map(workflow_of).collect::<AdminResult<_>>()?,
            token,
        })
    }

    pub(crate) async fn list_workflow_ids(
        &self,
        req: NamedEntityIdentifierListRequest,
    ) -> AdminResult<NamedEntityIdentifierList> {
        self.list_ids(ENTITY, req).await
    }
}
