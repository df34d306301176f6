//! [`ControlPlane`](crate::ControlPlane)'s values on the wire (`proto/alula/plane/v1`) and its
//! errors as gRPC statuses, both ways: the one place the client ([`crate::client`]) and
//! admin's service agree on.

use alula_idl::alula::plane::v1 as pb;
use alula_idl::flyteidl::core::workflow_execution::Phase;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::{
    ExecutionEvent, ExecutionKey, ExecutionStatus, Launch, OutboxEvent, PlaneError, RunRecord,
};

/// The trailer naming which [`PlaneError`] a status is.
pub const ERROR_KIND: &str = "alula-plane-error";

pub fn key_to_wire(key: &ExecutionKey) -> pb::ExecutionKey {
    pb::ExecutionKey {
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.name.clone(),
    }
}

/// The key a request names; INVALID_ARGUMENT without one.
pub fn key_from_wire(key: Option<pb::ExecutionKey>) -> Result<ExecutionKey, Status> {
    let key = key.ok_or_else(|| Status::invalid_argument("the execution key is missing"))?;
    if key.project.is_empty() || key.domain.is_empty() || key.name.is_empty() {
        return Err(Status::invalid_argument(
            "the execution key needs a project, a domain and a name",
        ));
    }
    Ok(ExecutionKey {
        project: key.project,
        domain: key.domain,
        name: key.name,
    })
}

pub fn run_to_wire(run: RunRecord) -> pb::RunRecord {
    pb::RunRecord {
        key: Some(key_to_wire(&run.key)),
        state: run.state,
        generation: run.generation,
        next_event: run.next_event,
    }
}

pub fn run_from_wire(run: pb::RunRecord) -> Result<RunRecord, PlaneError> {
    Ok(RunRecord {
        key: key_from_wire(run.key).map_err(|s| corrupt_answer(&s))?,
        state: run.state,
        generation: run.generation,
        next_event: run.next_event,
    })
}

pub fn outbox_to_wire(event: OutboxEvent) -> pb::OutboxEntry {
    pb::OutboxEntry {
        seq: event.seq,
        kind: event.kind,
        event: event.event,
    }
}

pub fn outbox_from_wire(event: pb::OutboxEntry) -> OutboxEvent {
    OutboxEvent {
        seq: event.seq,
        kind: event.kind,
        event: event.event,
    }
}

pub fn launch_to_wire(launch: Launch) -> pb::Launch {
    pb::Launch {
        spec: Some(launch.spec),
        inputs: Some(launch.inputs),
        closure: Some(launch.closure),
        task_resources: launch.task_resources,
        phase: launch.phase as i32,
    }
}

pub fn launch_from_wire(launch: pb::Launch) -> Result<Launch, PlaneError> {
    Ok(Launch {
        spec: launch.spec.unwrap_or_default(),
        inputs: launch.inputs.unwrap_or_default(),
        closure: launch.closure.ok_or_else(|| {
            PlaneError::Corrupt("admin sent a launch without its workflow".into())
        })?,
        task_resources: launch.task_resources,
        phase: phase_from_wire(launch.phase)?,
    })
}

pub fn status_to_wire(status: ExecutionStatus) -> pb::ExecutionStatus {
    pb::ExecutionStatus {
        phase: status.phase as i32,
        closure: Some(status.closure),
    }
}

pub fn status_from_wire(status: pb::ExecutionStatus) -> Result<ExecutionStatus, PlaneError> {
    Ok(ExecutionStatus {
        phase: phase_from_wire(status.phase)?,
        closure: status.closure.unwrap_or_default(),
    })
}

fn phase_from_wire(phase: i32) -> Result<Phase, PlaneError> {
    Phase::try_from(phase)
        .map_err(|_| PlaneError::Corrupt(format!("admin sent an unknown execution phase {phase}")))
}

pub fn event_to_wire(event: ExecutionEvent) -> pb::RecordEventRequest {
    use pb::record_event_request::Event;
    pb::RecordEventRequest {
        event: Some(match event {
            ExecutionEvent::Workflow(e) => Event::Workflow(*e),
            ExecutionEvent::Node(e) => Event::Node(*e),
            ExecutionEvent::Task(e) => Event::Task(*e),
        }),
    }
}

/// The event a request carries; INVALID_ARGUMENT without one.
pub fn event_from_wire(request: pb::RecordEventRequest) -> Result<ExecutionEvent, Status> {
    use pb::record_event_request::Event;
    match request.event {
        Some(Event::Workflow(e)) => Ok(ExecutionEvent::Workflow(Box::new(e))),
        Some(Event::Node(e)) => Ok(ExecutionEvent::Node(Box::new(e))),
        Some(Event::Task(e)) => Ok(ExecutionEvent::Task(Box::new(e))),
        None => Err(Status::invalid_argument("the event is missing")),
    }
}

/// A [`PlaneError`] as the status admin answers, its kind in the [`ERROR_KIND`] trailer.
pub fn error_to_status(error: PlaneError) -> Status {
    let (mut status, kind) = match error {
        PlaneError::Unavailable(message) => (Status::unavailable(message), "unavailable"),
        PlaneError::Corrupt(message) => (Status::data_loss(message), "corrupt"),
        PlaneError::Missing(what) => (Status::not_found(what), "missing"),
        PlaneError::Refused { code, message } => (Status::new(code, message), "refused"),
    };
    status
        .metadata_mut()
        .insert(ERROR_KIND, MetadataValue::from_static(kind));
    status
}

/// The [`PlaneError`] a status stands for. Without the trailer (the network, a proxy, or
/// admin's authentication answered, not the interface): transient codes are `Unavailable`
/// (tried again), anything else a `Refused` with its code.
pub fn status_to_error(status: Status) -> PlaneError {
    let kind = status
        .metadata()
        .get(ERROR_KIND)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let message = status.message().to_string();
    match kind.as_deref() {
        Some("unavailable") => PlaneError::Unavailable(message),
        Some("corrupt") => PlaneError::Corrupt(message),
        Some("missing") => PlaneError::Missing(message),
        Some("refused") => PlaneError::Refused {
            code: status.code(),
            message,
        },
        _ => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::Internal => {
                PlaneError::Unavailable(format!("admin ({:?}): {message}", status.code()))
            }
            code => PlaneError::Refused { code, message },
        },
    }
}

/// An answer from admin that breaks the contract (a run without its key).
fn corrupt_answer(status: &Status) -> PlaneError {
    PlaneError::Corrupt(format!("admin's answer: {}", status.message()))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;

    #[test]
    fn every_error_survives_the_round_trip() {
        let errors = [
            PlaneError::Unavailable("database is locked".into()),
            PlaneError::Corrupt("bad state".into()),
            PlaneError::Missing("workflow p/d/wf@v1".into()),
            PlaneError::Refused {
                code: Code::NotFound,
                message: "launch plan p/d/lp@v1 not found".into(),
            },
            PlaneError::Refused {
                code: Code::AlreadyExists,
                message: "exists".into(),
            },
        ];
        for error in errors {
            let expected = format!("{error:?}");
            let back = status_to_error(error_to_status(error));
            assert_eq!(format!("{back:?}"), expected);
        }
    }

    #[test]
    fn statuses_without_the_trailer_are_transient_or_refusals_by_code() {
        let back = status_to_error(Status::unavailable("connection refused"));
        assert!(matches!(back, PlaneError::Unavailable(m) if m.contains("connection refused")));
        let back = status_to_error(Status::permission_denied("needs the admin role"));
        assert!(matches!(
            back,
            PlaneError::Refused {
                code: Code::PermissionDenied,
                ..
            }
        ));
        // A NOT_FOUND from elsewhere is not taken for a missing workflow.
        let back = status_to_error(Status::not_found("no such route"));
        assert_eq!(back.code(), Some(Code::NotFound));
    }

    #[test]
    fn a_key_needs_all_three_names() {
        assert!(key_from_wire(None).is_err());
        let partial = pb::ExecutionKey {
            project: "p".into(),
            domain: String::new(),
            name: "n".into(),
        };
        assert_eq!(
            key_from_wire(Some(partial)).unwrap_err().code(),
            Code::InvalidArgument
        );
        let key = ExecutionKey {
            project: "p".into(),
            domain: "d".into(),
            name: "n".into(),
        };
        assert_eq!(key_from_wire(Some(key_to_wire(&key))).unwrap(), key);
    }
}
