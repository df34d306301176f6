//! CreateExecution (from a launch plan or a single task), GetExecution, ListExecutions,
//! TerminateExecution, UpdateExecution and GetExecutionData. Executions are recorded QUEUED for
//! the propeller to pick up; its events (`events.rs`) move them on and bring their outputs.

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    execution_closure::OutputResult, AbortMetadata, Execution, ExecutionClosure,
    ExecutionCreateRequest, ExecutionCreateResponse, ExecutionList, ExecutionMetadata,
    ExecutionSpec, ExecutionState, ExecutionStateChangeDetails, ExecutionTerminateRequest,
    ExecutionTerminateResponse, ExecutionUpdateRequest, ExecutionUpdateResponse, LaunchPlanSpec,
    ResourceListRequest, TaskClosure, WorkflowExecutionGetDataRequest,
    WorkflowExecutionGetDataResponse, WorkflowExecutionGetRequest,
};
use alula_idl::flyteidl::core::{
    parameter, workflow_execution::Phase, Identifier, LiteralMap, Parameter, ParameterMap,
    ResourceType, WorkflowExecutionIdentifier,
};
use prost::Message;
use rand::Rng;

use super::exec_settings::Scope;
use super::launch_plans::launch_plan_of;
use super::{decode, entity_id, list_params, named_id, timestamp, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::inputs::{plain_local_uris, resolve_inputs};
use crate::literals::{self, ForClient, Placed};
use crate::store::{
    is_tag_field, now_micros, Entity, EntityKey, ExecutionKey, ExecutionRow, EXECUTION_FIELDS,
};
use crate::task_resources;
use crate::validate;

/// Kubernetes-safe characters without vowels (no accidental words), as flyteadmin uses.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const GENERATED_NAME_LEN: usize = 20;

/// A fresh name: a letter, then random characters (20 in all, like flyteadmin's).
fn generate_name() -> String {
    let mut rng = rand::rng();
    let mut name = String::with_capacity(GENERATED_NAME_LEN);
    name.push('a');
    while name.len() < GENERATED_NAME_LEN {
        let i = rng.random_range(0..NAME_ALPHABET.len());
        name.push(char::from(NAME_ALPHABET[i]));
    }
    name
}

pub(super) fn is_terminal(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::TimedOut
    )
}

fn already_exists(key: &ExecutionKey) -> AdminError {
    AdminError::AlreadyExists(format!("execution {} already exists", display_exec(key)))
}

pub(super) fn display_exec(id: &ExecutionKey) -> String {
    format!("{}/{}/{}", id.project, id.domain, id.name)
}

pub(super) fn execution_key(id: Option<&WorkflowExecutionIdentifier>) -> AdminResult<ExecutionKey> {
    let id = id.ok_or_else(|| AdminError::invalid("missing execution id"))?;
    validate::project(&id.project, "execution id project")?;
    validate::domain(&id.domain, "execution id domain")?;
    // Lookups take any name that could have been stored; new names are checked strictly.
    validate::name(&id.name, "execution id name")?;
    Ok(ExecutionKey {
        project: id.project.clone(),
        domain: id.domain.clone(),
        name: id.name.clone(),
    })
}

/// The labels (key, value) and tags (key, "") an execution is filtered by, as flyteadmin
/// writes them to its execution_tags table. `spec.tags` is deprecated in flyteidl but older
/// clients still send it, and flyteadmin still records it.
#[allow(deprecated)]
fn execution_tags(spec: &ExecutionSpec) -> Vec<(String, String)> {
    let labels = spec.labels.iter().flat_map(|l| l.values.iter());
    let mut tags: Vec<(String, String)> = labels
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(spec.tags.iter().map(|t| (t.clone(), String::new())))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

fn execution_of(row: &ExecutionRow) -> AdminResult<Execution> {
    let what = || format!("execution {}", display_exec(&row.key));
    Ok(Execution {
        id: Some(WorkflowExecutionIdentifier {
            project: row.key.project.clone(),
            domain: row.key.domain.clone(),
            name: row.key.name.clone(),
            org: String::new(),
        }),
        spec: Some(decode::<ExecutionSpec>(&row.spec, what)?),
        closure: Some(decode::<ExecutionClosure>(&row.closure, what)?),
    })
}

/// What an execution launches, resolved from the store.
struct Launch {
    expected: ParameterMap,
    fixed: LiteralMap,
    workflow_id: Option<Identifier>,
    /// The launch plan's spec (none for a single task), for the execution's settings.
    launch_plan: Option<LaunchPlanSpec>,
}

impl AdminApi {
    async fn resolve_launch(&self, target: &Identifier) -> AdminResult<Launch> {
        if target.resource_type == ResourceType::Task as i32 {
            let id = entity_id(Some(target), Entity::Task)?;
            let row = self
                .store
                .get_entity(Entity::Task, &EntityKey::from(id))
                .await?
                .ok_or_else(|| {
                    AdminError::not_found(format!("task {} not found", IdDisplay(id)))
                })?;
            let closure: TaskClosure = decode(&row.closure, || format!("task {}", IdDisplay(id)))?;
            // Registered before the data plane changed (a plugin disabled since): refused here.
            if let Some(template) = closure
                .compiled_task
                .as_ref()
                .and_then(|c| c.template.as_ref())
            {
                self.served.check(template).map_err(AdminError::invalid)?;
            }
            let inputs = closure
                .compiled_task
                .and_then(|c| c.template)
                .and_then(|t| t.interface)
                .and_then(|i| i.inputs)
                .unwrap_or_default();
            // A single task has no launch plan defaults: every input is required.
            let expected = ParameterMap {
                parameters: inputs
                    .variables
                    .into_iter()
                    .map(|(name, var)| {
                        let param = Parameter {
                            var: Some(var),
                            behavior: Some(parameter::Behavior::Required(true)),
                        };
                        (name, param)
                    })
                    .collect(),
            };
            return Ok(Launch {
                expected,
                fixed: LiteralMap::default(),
                workflow_id: None,
                launch_plan: None,
            });
        }
        let id = entity_id(Some(target), Entity::LaunchPlan)?;
        let row = self
            .store
            .get_entity(Entity::LaunchPlan, &EntityKey::from(id))
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!("launch plan {} not found", IdDisplay(id)))
            })?;
        let lp = launch_plan_of(&row)?;
        let spec = lp.spec.unwrap_or_default();
        Ok(Launch {
            expected: lp
                .closure
                .and_then(|c| c.expected_inputs)
                .unwrap_or_default(),
            fixed: spec.fixed_inputs.clone().unwrap_or_default(),
            workflow_id: spec.workflow_id.clone(),
            launch_plan: Some(spec),
        })
    }

    pub(crate) async fn create_execution(
        &self,
        req: ExecutionCreateRequest,
    ) -> AdminResult<ExecutionCreateResponse> {
        super::require(&req.project, "project")?;
        super::require(&req.domain, "domain")?;
        self.check_project_domain(&req.project, &req.domain).await?;
        let mut spec = req
            .spec
            .ok_or_else(|| AdminError::invalid("missing execution spec"))?;
        let target = spec.launch_plan.clone().ok_or_else(|| {
            AdminError::invalid("missing spec.launch_plan: the launch plan or task to execute")
        })?;
        let launch = self.resolve_launch(&target).await?;
        // Older clients put the inputs in the deprecated spec.inputs.
        #[allow(deprecated)]
        let mut user_inputs = req
            .inputs
            .or_else(|| spec.inputs.take())
            .unwrap_or_default();
        plain_local_uris(&self.config.storage, &mut user_inputs);
        let inputs = resolve_inputs(&user_inputs, &launch.expected, &launch.fixed)?;

        let name = if req.name.is_empty() {
            generate_name()
        } else {
            validate::execution_name(&req.name, "execution name")?;
            req.name.clone()
        };
        let key = ExecutionKey {
            project: req.project.clone(),
            domain: req.domain.clone(),
            name,
        };
        let is_task = target.resource_type == ResourceType::Task as i32;
        // A single task runs in a wrapper workflow named after it, as in flyteadmin.
        let workflow_name = if is_task {
            target.name.clone()
        } else {
            launch
                .workflow_id
                .as_ref()
                .map(|w| w.name.clone())
                .unwrap_or_default()
        };
        let scope = Scope {
            org: &req.org,
            project: &req.project,
            domain: &req.domain,
            workflow: &workflow_name,
        };
        let (mut spec, platform) = self
            .resolve_settings(&scope, spec, launch.launch_plan.as_ref())
            .await?;
        if !task_resources::is_empty(&platform) {
            // Written beside the inputs before the row exists; never over another execution's.
            if self.store.execution_exists(&key).await? {
                return Err(already_exists(&key));
            }
            self.config
                .storage
                .put(
                    &literals::keys::execution(&key, task_resources::KEY_FILE),
                    platform.encode_to_vec().into(),
                )
                .await
                .map_err(literals::LiteralsError::from)?;
        }
        // Above the inline limit the inputs go to storage; the gRPC message limit bounds them.
        let inputs = self
            .place_literals(
                &literals::keys::execution(&key, "inputs.pb"),
                inputs.encode_to_vec(),
            )
            .await?;
        let user_inputs = self
            .place_literals(
                &literals::keys::execution(&key, "user_inputs.pb"),
                user_inputs.encode_to_vec(),
            )
            .await?;
        let metadata = spec.metadata.get_or_insert_with(ExecutionMetadata::default);
        let mode = i64::from(metadata.mode);
        let principal = metadata.principal.clone();
        let tags = execution_tags(&spec);
        let now = now_micros();
        let closure = ExecutionClosure {
            phase: Phase::Queued as i32,
            created_at: Some(timestamp(now)),
            updated_at: Some(timestamp(now)),
            workflow_id: launch.workflow_id.clone(),
            ..Default::default()
        };
        let workflow = launch.workflow_id.unwrap_or_default();
        let (lp_name, lp_version, task_name, task_version) = if is_task {
            (
                String::new(),
                String::new(),
                target.name.clone(),
                target.version.clone(),
            )
        } else {
            (
                target.name.clone(),
                target.version.clone(),
                String::new(),
                String::new(),
            )
        };
        let row = ExecutionRow {
            key: key.clone(),
            launch_entity: i64::from(target.resource_type),
            launch_plan_name: lp_name,
            launch_plan_version: lp_version,
            workflow_name: workflow.name,
            workflow_version: workflow.version,
            task_name,
            task_version,
            phase: Phase::Queued.as_str_name().to_string(),
            mode,
            spec: spec.encode_to_vec(),
            closure: closure.encode_to_vec(),
            inputs: inputs.inline,
            inputs_uri: inputs.uri,
            user_inputs: user_inputs.inline,
            user_inputs_uri: user_inputs.uri,
            created_at: now,
            updated_at: now,
            principal,
            tags,
        };
        if !self.store.insert_execution(&row).await? {
            return Err(already_exists(&key));
        }
        self.notify(super::ExecutionNotice::Created(key.clone()));
        Ok(ExecutionCreateResponse {
            id: Some(WorkflowExecutionIdentifier {
                project: key.project,
                domain: key.domain,
                name: key.name,
                org: req.org,
            }),
        })
    }

    pub(super) async fn require_execution(&self, key: &ExecutionKey) -> AdminResult<()> {
        if self.store.execution_exists(key).await? {
            Ok(())
        } else {
            Err(AdminError::not_found(format!(
                "execution {} not found",
                display_exec(key)
            )))
        }
    }

    pub(crate) async fn execution_row(&self, key: &ExecutionKey) -> AdminResult<ExecutionRow> {
        self.store.get_execution(key).await?.ok_or_else(|| {
            AdminError::not_found(format!("execution {} not found", display_exec(key)))
        })
    }

    pub(crate) async fn get_execution(
        &self,
        req: WorkflowExecutionGetRequest,
    ) -> AdminResult<Execution> {
        let key = execution_key(req.id.as_ref())?;
        execution_of(&self.execution_row(&key).await?)
    }

    pub(crate) async fn get_execution_data(
        &self,
        req: WorkflowExecutionGetDataRequest,
    ) -> AdminResult<WorkflowExecutionGetDataResponse> {
        let key = execution_key(req.id.as_ref())?;
        let row = self.execution_row(&key).await?;
        let inputs = self
            .literals_for_client(
                &row.inputs,
                &row.inputs_uri,
                &format!("inputs of execution {}", display_exec(&key)),
            )
            .await?;
        // Outputs arrive with the SUCCEEDED event, inline or as a URI.
        let state = self
            .store
            .get_execution_event_state(&key)
            .await?
            .unwrap_or_default();
        let outputs = self
            .literals_for_client(
                &state.outputs,
                &state.outputs_uri,
                &format!("outputs of execution {}", display_exec(&key)),
            )
            .await?;
        #[allow(deprecated)]
        Ok(WorkflowExecutionGetDataResponse {
            inputs: inputs.blob,
            outputs: outputs.blob,
            full_inputs: inputs.full,
            full_outputs: outputs.full,
        })
    }

    /// An encoded literal map for a row: inline when small, else written under `key`.
    pub(super) async fn place_literals(&self, key: &str, encoded: Vec<u8>) -> AdminResult<Placed> {
        let limit = self.config.max_inline_literal_bytes;
        Ok(literals::place(&self.config.storage, limit, key, encoded).await?)
    }

    /// A row's literal map (inline, or stored under `uri`) as the Get*Data calls return it.
    pub(super) async fn literals_for_client(
        &self,
        inline: &[u8],
        uri: &str,
        what: &str,
    ) -> AdminResult<ForClient> {
        let max = self.config.max_download_bytes;
        Ok(literals::for_client(&self.config.storage, max, inline, uri, what).await?)
    }

    /// Archives or restores an execution (`state`); recorded in the closure's
    /// `state_change_details`, as the console reads it.
    pub(crate) async fn update_execution(
        &self,
        req: ExecutionUpdateRequest,
    ) -> AdminResult<ExecutionUpdateResponse> {
        let key = execution_key(req.id.as_ref())?;
        let state = ExecutionState::try_from(req.state).map_err(|_| {
            AdminError::invalid(format!(
                "unknown state {} for execution {}",
                req.state,
                display_exec(&key)
            ))
        })?;
        let row = self.execution_row(&key).await?;
        let mut closure: ExecutionClosure =
            decode(&row.closure, || format!("execution {}", display_exec(&key)))?;
        let now = now_micros();
        closure.state_change_details = Some(ExecutionStateChangeDetails {
            state: state as i32,
            occurred_at: Some(timestamp(now)),
            principal: String::new(),
        });
        let updated = self
            .store
            .update_execution_phase(&key, &row.phase, &row.phase, closure.encode_to_vec(), now)
            .await?;
        if !updated {
            return Err(AdminError::FailedPrecondition(format!(
                "execution {} changed phase while being updated; retry",
                display_exec(&key)
            )));
        }
        Ok(ExecutionUpdateResponse {})
    }

    pub(crate) async fn list_executions(
        &self,
        req: ResourceListRequest,
    ) -> AdminResult<ExecutionList> {
        let id = named_id(req.id.as_ref(), false)?;
        let list = list_params(
            &EXECUTION_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        if is_tag_field(list.sort_field) {
            // An execution has many labels: there is no one value to order it by.
            return Err(AdminError::invalid(format!(
                "cannot sort executions by {}: it is a filter on labels and tags only",
                list.sort_field.name
            )));
        }
        let rows = self
            .store
            .list_executions(&id.project, &id.domain, &list)
            .await?;
        Ok(ExecutionList {
            token: list.next_token(rows.len()),
            executions: rows.iter().map(execution_of).collect::<AdminResult<_>>()?,
        })
    }

    /// Moves the execution to ABORTING with the cause; the propeller stops what runs and
    /// reports ABORTED. The phase update is conditional on the phase read, and a data plane
    /// moving the execution on at the same moment (QUEUED to RUNNING, say) is not the caller's
    /// problem: the update is tried again on the new phase.
    pub(crate) async fn terminate_execution(
        &self,
        req: ExecutionTerminateRequest,
    ) -> AdminResult<ExecutionTerminateResponse> {
        /// Phase changes racing one terminate: an execution has a handful of phases, so a
        /// terminate that loses this many times in a row means something is wrong.
        const TRIES: usize = 8;
        let key = execution_key(req.id.as_ref())?;
        for _ in 0..TRIES {
            let row = self.execution_row(&key).await?;
            let phase = Phase::from_str_name(&row.phase).unwrap_or(Phase::Undefined);
            if is_terminal(phase) {
                return Err(AdminError::FailedPrecondition(format!(
                    "execution {} is already in terminal phase {}",
                    display_exec(&key),
                    row.phase
                )));
            }
            if phase == Phase::Aborting {
                return Err(AdminError::FailedPrecondition(format!(
                    "execution {} is already being terminated",
                    display_exec(&key)
                )));
            }
            let mut closure: ExecutionClosure =
                decode(&row.closure, || format!("execution {}", display_exec(&key)))?;
            let now = now_micros();
            closure.phase = Phase::Aborting as i32;
            closure.updated_at = Some(timestamp(now));
            closure.output_result = Some(OutputResult::AbortMetadata(AbortMetadata {
                cause: req.cause.clone(),
                principal: String::new(),
            }));
            let updated = self
                .store
                .update_execution_phase(
                    &key,
                    &row.phase,
                    Phase::Aborting.as_str_name(),
                    closure.encode_to_vec(),
                    now,
                )
                .await?;
            if updated {
                self.notify(super::ExecutionNotice::Terminated(key));
                return Ok(ExecutionTerminateResponse {});
            }
        }
        Err(AdminError::FailedPrecondition(format!(
            "execution {} kept changing phase while being terminated; retry",
            display_exec(&key)
        )))
    }
}
