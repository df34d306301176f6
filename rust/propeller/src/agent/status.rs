//! What an agent's `Resource` means for the attempt: its phase (flyteidl's
//! `TaskExecution.Phase`, or the legacy `State` of older agents) mapped as Flyte's agent plugin
//! maps it, and the error document a failure leaves for the driver.

use alula_idl::flyteidl::admin::{agent_error, Resource, State};
use alula_idl::flyteidl::core::{
    container_error, execution_error::ErrorKind, task_execution::Phase, ContainerError,
    ErrorDocument,
};

/// Where an agent task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentPhase {
    /// Queued, initializing, waiting for resources or running.
    Running,
    Succeeded,
    /// Failed; `retryable` when the agent says a new attempt may succeed.
    Failed {
        retryable: bool,
    },
}

/// The phase of `resource`: its `phase` when set, else the deprecated `state`.
pub fn phase_of(resource: &Resource) -> AgentPhase {
    match Phase::try_from(resource.phase).unwrap_or(Phase::Undefined) {
        Phase::Succeeded => AgentPhase::Succeeded,
        // Flyte: FAILED is a permanent failure, RETRYABLE_FAILED (and ABORTED, which an
        // agent only reports for a task someone else deleted) worth another attempt.
        Phase::Failed => AgentPhase::Failed { retryable: false },
        Phase::RetryableFailed | Phase::Aborted => AgentPhase::Failed { retryable: true },
        Phase::Queued
        | Phase::Running
        | Phase::Initializing
        | Phase::WaitingForResources
        | Phase::Undefined => {
            if resource.phase != Phase::Undefined as i32 {
                return AgentPhase::Running;
            }
            #[allow(deprecated)]
            let state = resource.state;
            match State::try_from(state) {
                Ok(State::Succeeded) => AgentPhase::Succeeded,
                Ok(State::PermanentFailure) => AgentPhase::Failed { retryable: false },
                // RETRYABLE_FAILURE is the enum's zero: an agent that sets neither field says
                // "retryable failure", as in Flyte.
                Ok(State::RetryableFailure) => AgentPhase::Failed { retryable: true },
                Ok(State::Pending | State::Running) => AgentPhase::Running,
                Err(_) => AgentPhase::Failed { retryable: true },
            }
        }
    }
}

/// The `error.pb` of a failed agent task: the agent's error (code, kind, origin) when it
/// gave one, its message either way, so the client sees why.
pub fn error_document(
    agent: &str,
    task_type: &str,
    resource: &Resource,
    retryable: bool,
) -> ErrorDocument {
    let detail = match resource.message.trim() {
        "" => "the agent gave no message".to_string(),
        m => m.to_string(),
    };
    let (code, kind, origin) = match &resource.agent_error {
        Some(e) => (
            if e.code.is_empty() {
                "AgentTaskFailed".to_string()
            } else {
                e.code.clone()
            },
            match agent_error::Kind::try_from(e.kind) {
                Ok(agent_error::Kind::Recoverable) => container_error::Kind::Recoverable,
                _ => container_error::Kind::NonRecoverable,
            },
            e.origin,
        ),
        None => (
            "AgentTaskFailed".to_string(),
            match retryable {
                true => container_error::Kind::Recoverable,
                false => container_error::Kind::NonRecoverable,
            },
            ErrorKind::User as i32,
        ),
    };
    ErrorDocument {
        error: Some(ContainerError {
            code,
            message: format!("agent {agent} failed the {task_type} task: {detail}"),
            kind: kind as i32,
            origin,
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::admin::AgentError;

    fn with_phase(phase: Phase) -> Resource {
        Resource {
            phase: phase as i32,
            ..Default::default()
        }
    }

    #[allow(deprecated)]
    fn with_state(state: State) -> Resource {
        Resource {
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn phases_map_as_flyte_maps_them() {
        assert_eq!(
            phase_of(&with_phase(Phase::Succeeded)),
            AgentPhase::Succeeded
        );
        assert_eq!(phase_of(&with_phase(Phase::Running)), AgentPhase::Running);
        assert_eq!(phase_of(&with_phase(Phase::Queued)), AgentPhase::Running);
        assert_eq!(
            phase_of(&with_phase(Phase::WaitingForResources)),
            AgentPhase::Running
        );
        assert_eq!(
            phase_of(&with_phase(Phase::Failed)),
            AgentPhase::Failed { retryable: false }
        );
        assert_eq!(
            phase_of(&with_phase(Phase::RetryableFailed)),
            AgentPhase::Failed { retryable: true }
        );
    }

    #[test]
    fn the_legacy_state_counts_when_no_phase_is_set() {
        assert_eq!(
            phase_of(&with_state(State::Succeeded)),
            AgentPhase::Succeeded
        );
        assert_eq!(phase_of(&with_state(State::Pending)), AgentPhase::Running);
        assert_eq!(phase_of(&with_state(State::Running)), AgentPhase::Running);
        assert_eq!(
            phase_of(&with_state(State::PermanentFailure)),
            AgentPhase::Failed { retryable: false }
        );
        assert_eq!(
            phase_of(&Resource::default()),
            AgentPhase::Failed { retryable: true }
        );
        // A phase wins over the state.
        let mut r = with_state(State::PermanentFailure);
        r.phase = Phase::Running as i32;
        assert_eq!(phase_of(&r), AgentPhase::Running);
    }

    #[test]
    fn failures_carry_the_agents_message_and_kind() {
        let mut r = with_phase(Phase::Failed);
        r.message = "table not found".into();
        let doc = error_document("bq", "bigquery_query_job_task", &r, false);
        let e = doc.error.expect("error");
        assert!(e.message.contains("table not found"), "{}", e.message);
        assert!(e.message.contains("bq"), "{}", e.message);
        assert_eq!(e.kind, container_error::Kind::NonRecoverable as i32);
        r.agent_error = Some(AgentError {
            code: "Quota".into(),
            kind: agent_error::Kind::Recoverable as i32,
            origin: ErrorKind::System as i32,
        });
        let e = error_document("bq", "t", &r, false).error.expect("error");
        assert_eq!(e.code, "Quota");
        assert_eq!(e.kind, container_error::Kind::Recoverable as i32);
        assert_eq!(e.origin, ErrorKind::System as i32);
    }
}
