//! CreateLaunchPlan (validated against its workflow's interface; the closure carries the
//! expected inputs and outputs, and a schedule must be one the scheduler can run), reads, and
//! activation (one active version per name, whose schedule then ticks: `crate::schedule`).

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    ActiveLaunchPlanListRequest, ActiveLaunchPlanRequest, LaunchPlan, LaunchPlanClosure,
    LaunchPlanCreateRequest, LaunchPlanCreateResponse, LaunchPlanList, LaunchPlanSpec,
    LaunchPlanState, LaunchPlanUpdateRequest, LaunchPlanUpdateResponse, NamedEntityIdentifierList,
    NamedEntityIdentifierListRequest, ObjectGetRequest, ResourceListRequest,
};
use prost::Message;

use super::workflows::workflow_of;
use super::{
    decode, entity_id, list_params, named_id, registration_conflict, require, sha256, timestamp,
    typed_id, AdminApi,
};
use crate::error::{AdminError, AdminResult};
use crate::inputs::launch_plan_expected_inputs;
use crate::schedule;
use crate::store::query::Param;
use crate::store::{now_micros, Entity, EntityKey, EntityRow, InsertOutcome};

const ENTITY: Entity = Entity::LaunchPlan;

/// The stored launch plan; state and `updated_at` live in columns because activation changes
/// them without rewriting the closure.
pub(super) fn launch_plan_of(row: &EntityRow) -> AdminResult<LaunchPlan> {
    let what = || format!("launch plan {}", IdDisplay(&row.key.identifier(ENTITY)));
    let spec: LaunchPlanSpec = decode(&row.spec, what)?;
    let mut closure: LaunchPlanClosure = decode(&row.closure, what)?;
    closure.state = i32::try_from(row.state).unwrap_or_default();
    closure.updated_at = Some(timestamp(row.updated_at));
    Ok(LaunchPlan {
        id: Some(row.key.identifier(ENTITY)),
        spec: Some(spec),
        closure: Some(closure),
    })
}

impl AdminApi {
    pub(crate) async fn create_launch_plan(
        &self,
        req: LaunchPlanCreateRequest,
    ) -> AdminResult<LaunchPlanCreateResponse> {
        let id = typed_id(entity_id(req.id.as_ref(), ENTITY)?, ENTITY);
        self.check_project_domain(&id.project, &id.domain).await?;
        let spec = req.spec.ok_or_else(|| {
            AdminError::invalid(format!("missing spec of launch plan {}", IdDisplay(&id)))
        })?;
        let workflow_id = entity_id(spec.workflow_id.as_ref(), Entity::Workflow).map_err(|e| {
            AdminError::invalid(format!(
                "launch plan {}: spec.workflow_id: {e}",
                IdDisplay(&id)
            ))
        })?;
        let workflow_row = self
            .store
            .get_entity(Entity::Workflow, &EntityKey::from(workflow_id))
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!(
                    "workflow {} of launch plan {} is not registered",
                    IdDisplay(workflow_id),
                    IdDisplay(&id)
                ))
            })?;
        let interface = workflow_of(&workflow_row)?
            .closure
            .and_then(|c| c.compiled_workflow)
            .and_then(|c| c.primary)
            .and_then(|p| p.template)
            .and_then(|t| t.interface)
            .unwrap_or_default();
        let expected_inputs = launch_plan_expected_inputs(
            &interface.inputs.unwrap_or_default(),
            &spec.default_inputs.clone().unwrap_or_default(),
            &spec.fixed_inputs.clone().unwrap_or_default(),
        )
        .map_err(|e| AdminError::invalid(format!("launch plan {}: {e}", IdDisplay(&id))))?;
        if let Some(schedule) = spec
            .entity_metadata
            .as_ref()
            .and_then(|m| m.schedule.as_ref())
        {
            schedule::validate(
                schedule,
                &expected_inputs,
                &spec.fixed_inputs.clone().unwrap_or_default(),
            )
            .map_err(|e| {
                AdminError::invalid(format!("launch plan {}: schedule: {e}", IdDisplay(&id)))
            })?;
        }

        let now = now_micros();
        let key = EntityKey::from(&id);
        let spec_bytes = spec.encode_to_vec();
        let row = EntityRow {
            key: key.clone(),
            digest: sha256(&spec_bytes),
            spec: spec_bytes,
            closure: LaunchPlanClosure {
                state: LaunchPlanState::Inactive as i32,
                expected_inputs: Some(expected_inputs),
                expected_outputs: interface.outputs,
                created_at: Some(timestamp(now)),
                updated_at: Some(timestamp(now)),
            }
            .encode_to_vec(),
            state: LaunchPlanState::Inactive as i64,
            created_at: now,
            updated_at: now,
        };
        let extra = [
            ("workflow_name", Param::from(workflow_id.name.as_str())),
            (
                "workflow_version",
                Param::from(workflow_id.version.as_str()),
            ),
        ];
        match self.store.insert_entity(ENTITY, &row, &extra).await? {
            InsertOutcome::Inserted => Ok(LaunchPlanCreateResponse {}),
            InsertOutcome::Exists(existing) => {
                let old = launch_plan_of(&existing)?.spec;
                Err(registration_conflict(
                    ENTITY,
                    &key,
                    existing.digest == row.digest,
                    &old,
                    &Some(spec),
                ))
            }
        }
    }

    pub(crate) async fn get_launch_plan(&self, req: ObjectGetRequest) -> AdminResult<LaunchPlan> {
        let id = entity_id(req.id.as_ref(), ENTITY)?;
        let row = self
            .store
            .get_entity(ENTITY, &EntityKey::from(id))
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!("launch plan {} not found", IdDisplay(id)))
            })?;
        launch_plan_of(&row)
    }

    pub(crate) async fn get_active_launch_plan(
        &self,
        req: ActiveLaunchPlanRequest,
    ) -> AdminResult<LaunchPlan> {
        let id = named_id(req.id.as_ref(), true)?;
        let list = list_params(ENTITY.fields(), "", None, 1, "")?;
        let scope = [
            ("project", Param::from(id.project.as_str())),
            ("domain", Param::from(id.domain.as_str())),
            ("name", Param::from(id.name.as_str())),
            ("state", Param::Int(LaunchPlanState::Active as i64)),
        ];
        let rows = self.store.list_entities(ENTITY, &scope, &list).await?;
        let row = rows.first().ok_or_else(|| {
            AdminError::not_found(format!(
                "launch plan {}/{}/{} has no active version",
                id.project, id.domain, id.name
            ))
        })?;
        launch_plan_of(row)
    }

    pub(crate) async fn list_active_launch_plans(
        &self,
        req: ActiveLaunchPlanListRequest,
    ) -> AdminResult<LaunchPlanList> {
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        let list = list_params(
            ENTITY.fields(),
            "",
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let scope = [
            ("project", Param::from(req.project.as_str())),
            ("domain", Param::from(req.domain.as_str())),
            ("state", Param::Int(LaunchPlanState::Active as i64)),
        ];
        let rows = self.store.list_entities(ENTITY, &scope, &list).await?;
        Ok(LaunchPlanList {
            token: list.next_token(rows.len()),
            launch_plans: rows
                .iter()
                .map(launch_plan_of)
                .collect::<AdminResult<_>>()?,
        })
    }

    pub(crate) async fn list_launch_plans(
        &self,
        req: ResourceListRequest,
    ) -> AdminResult<LaunchPlanList> {
        let (rows, token) = self.list_versions(ENTITY, &req).await?;
        Ok(LaunchPlanList {
            launch_plans: rows
                .iter()
                .map(launch_plan_of)
                .collect::<AdminResult<_>>()?,
            token,
        })
    }

    pub(crate) async fn list_launch_plan_ids(
        &self,
        req: NamedEntityIdentifierListRequest,
    ) -> AdminResult<NamedEntityIdentifierList> {
        self.list_ids(ENTITY, req).await
    }

    /// ACTIVE makes this version the active one of its name (deactivating the previous one) and
    /// starts its schedule, if it has one, in place of the previous version's; INACTIVE
    /// deactivates it and stops its schedule.
    pub(crate) async fn update_launch_plan(
        &self,
        req: LaunchPlanUpdateRequest,
    ) -> AdminResult<LaunchPlanUpdateResponse> {
        let id = entity_id(req.id.as_ref(), ENTITY)?;
        let active = match LaunchPlanState::try_from(req.state) {
            Ok(LaunchPlanState::Active) => true,
            Ok(LaunchPlanState::Inactive) => false,
            Err(_) => {
                return Err(AdminError::invalid(format!(
                    "unknown launch plan state {}; use ACTIVE or INACTIVE",
                    req.state
                )))
            }
        };
        let key = EntityKey::from(id);
        let not_found =
            || AdminError::not_found(format!("launch plan {} not found", IdDisplay(id)));
        let store = &self.store;
        if active {
            // The schedule row first, the state second: a crash between them leaves a row
            // whose launch plan is not active, which the scheduler removes at its tick.
            let row = store
                .get_entity(ENTITY, &key)
                .await?
                .ok_or_else(not_found)?;
            let schedule = launch_plan_of(&row)?
                .spec
                .and_then(|s| s.entity_metadata)
                .and_then(|m| m.schedule);
            if let Some(schedule) = &schedule {
                let row =
                    schedule::activation_row(&key, schedule, chrono::Utc::now()).map_err(|e| {
                        AdminError::invalid(format!("launch plan {}: schedule: {e}", IdDisplay(id)))
                    })?;
                store.put_schedule(&row, now_micros()).await?;
            }
            if !store
                .set_launch_plan_state(&key, true, now_micros())
                .await?
            {
                return Err(not_found());
            }
            if schedule.is_none() {
                // The version it replaces may have had one.
                store
                    .delete_schedule(&key.project, &key.domain, &key.name, None)
                    .await?;
            }
        } else {
            if !store
                .set_launch_plan_state(&key, false, now_micros())
                .await?
            {
                return Err(not_found());
            }
            store
                .delete_schedule(&key.project, &key.domain, &key.name, Some(&key.version))
                .await?;
        }
        Ok(LaunchPlanUpdateResponse {})
    }
}
