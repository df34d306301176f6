//! A driver's look outside its engine: gate signals, TerminateExecution, child executions, and
//! the delivery of saved events to admin's ingestion.

use super::*;

impl Driver {
    pub(super) async fn create_signal(
        &self,
        signal_id: &str,
        kind: &SignalKind,
    ) -> Result<(), DriveError> {
        use alula_idl::flyteidl::admin::SignalGetOrCreateRequest;
        use alula_idl::flyteidl::core::SignalIdentifier;
        let r#type = match kind {
            SignalKind::Approve => LiteralType {
                r#type: Some(literal_type::Type::Simple(SimpleType::Boolean as i32)),
                ..Default::default()
            },
            SignalKind::Value { r#type, .. } => r#type.as_deref().cloned().unwrap_or_default(),
        };
        let req = SignalGetOrCreateRequest {
            id: Some(SignalIdentifier {
                signal_id: signal_id.to_string(),
                execution_id: Some(self.id.clone()),
            }),
            r#type: Some(r#type),
        };
        self.ctx.plane.create_signal(req).await?;
        Ok(())
    }

    /// Delivers set signals to the gates waiting for them. Returns whether one was delivered.
    pub(super) async fn check_signals(&mut self) -> Result<bool, DriveError> {
        let mut delivered = false;
        let waiting: Vec<(String, String)> = self
            .signals
            .iter()
            .map(|(node, (signal, _))| (node.clone(), signal.clone()))
            .collect();
        for (node, signal_id) in waiting {
            let Some(value) = self.ctx.plane.signal_value(&self.key, &signal_id).await? else {
                continue;
            };
            self.signals.remove(&node);
            self.dirty = true;
            if let Err(e) = self.exec.signal(&node, value, SystemTime::now()) {
                tracing::warn!(node = %node, error = %e, "signal refused");
            }
            delivered = true;
        }
        Ok(delivered)
    }

    /// Reacts to TerminateExecution: aborts everything (once).
    pub(super) async fn check_phase(&mut self) -> Result<(), DriveError> {
        if self.aborting || self.exec.phase().is_terminal() {
            return Ok(());
        }
        let Some(status) = self.ctx.plane.status(&self.key).await? else {
            return Ok(());
        };
        if status.phase != Phase::Aborting && status.phase != Phase::Aborted {
            return Ok(());
        }
        let cause = match status.closure.output_result {
            Some(alula_idl::flyteidl::admin::execution_closure::OutputResult::AbortMetadata(m)) => {
                m.cause
            }
            _ => "terminated".into(),
        };
        self.aborting = true;
        self.dirty = true;
        let actions = self.exec.abort(&cause, SystemTime::now());
        for action in actions {
            match action {
                Action::AbortTask { attempt, .. } => self.to_abort.push(attempt),
                Action::AbortChild { node_execution_id } => {
                    self.children.abort(&node_execution_id).await
                }
                _ => {}
            }
        }
        // Attempts that were about to start never will.
        self.to_start.clear();
        self.retry_starts.clear();
        self.drop_reservations().await;
        for event in self.exec.take_events() {
            self.pending_events.push(encode_event(&event));
        }
        Ok(())
    }

    /// The periodic look outside: children, signals and TerminateExecution from another admin.
    pub(super) async fn poll_outside(&mut self) -> Result<(), DriveError> {
        for (node, result) in self.children.poll().await? {
            self.dirty = true;
            if let Err(e) = self.exec.child_finished(&node, result, SystemTime::now()) {
                tracing::warn!(node = %node, error = %e, "child result refused");
            }
        }
        if !self.signals.is_empty() {
            self.check_signals().await?;
        }
        self.check_phase().await
    }

    /// Delivers the outbox to admin's event ingestion, in order.
    pub(super) async fn deliver_outbox(&mut self) -> Result<(), DriveError> {
        loop {
            let batch = self.ctx.plane.outbox(&self.key, 256).await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                self.undelivered = false;
                return Ok(());
            };
            for event in &batch {
                deliver(&self.ctx, event.kind, &event.event).await?;
            }
            self.ctx.plane.ack_outbox(&self.key, last).await?;
            if batch.len() < 256 {
                self.undelivered = false;
                return Ok(());
            }
        }
    }
}

/// One event into admin's ingestion. Refusals that mean "already recorded" or "the execution
/// is over" are final answers, not failures: the event is dropped, as flytepropeller does.
pub(crate) async fn deliver(ctx: &Context, kind: i64, bytes: &[u8]) -> Result<(), DriveError> {
    let corrupt = |e: prost::DecodeError| DriveError::Corrupt(format!("outbox event: {e}"));
    let event = match kind {
        0 => ExecutionEvent::Workflow(Box::new(
            WorkflowExecutionEvent::decode(bytes).map_err(corrupt)?,
        )),
        1 => {
            let event = NodeExecutionEvent::decode(bytes).map_err(corrupt)?;
            tracing::debug!(
                node = event
                    .id
                    .as_ref()
                    .map(|i| i.node_id.as_str())
                    .unwrap_or_default(),
                phase = event.phase,
                "delivering node event"
            );
            ExecutionEvent::Node(Box::new(event))
        }
        _ => ExecutionEvent::Task(Box::new(
            TaskExecutionEvent::decode(bytes).map_err(corrupt)?,
        )),
    };
    match ctx.plane.record_event(event).await {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some(
                    tonic::Code::AlreadyExists
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::InvalidArgument
                )
            ) =>
        {
            tracing::debug!(code = ?e.code(), message = %e, "event not recorded");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
