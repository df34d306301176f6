//! A driver's task attempts: where each runs (its plugin), what it is handed (inputs, cached
//! outputs), starting and re-attaching, and what its end reports (outputs, cache, log links).

use super::*;

impl Driver {
    pub(super) fn plugin_for(
        &self,
        attempt: &TaskAttempt,
    ) -> Result<usize, crate::registry::Refusal> {
        self.ctx.registry.select(&attempt.task)
    }

    /// The plugin's view of an engine attempt, with its inputs written.
    pub(super) async fn prepare(
        &mut self,
        ta: &TaskAttempt,
        plugin: &dyn Plugin,
    ) -> Result<Attempt, DriveError> {
        let layout = &self.ctx.layout;
        let node = ta.node_execution_id.as_str();
        let mut env = std::collections::BTreeMap::new();
        let task_id = ta.task.id.clone().unwrap_or_default();
        for (k, v) in [
            ("FLYTE_INTERNAL_EXECUTION_ID", self.id.name.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_PROJECT", self.id.project.as_str()),
            ("FLYTE_INTERNAL_EXECUTION_DOMAIN", self.id.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_PROJECT", task_id.project.as_str()),
            ("FLYTE_INTERNAL_TASK_DOMAIN", task_id.domain.as_str()),
            ("FLYTE_INTERNAL_TASK_NAME", task_id.name.as_str()),
            ("FLYTE_INTERNAL_TASK_VERSION", task_id.version.as_str()),
            ("FLYTE_INTERNAL_NODE_ID", node),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        env.insert("FLYTE_ATTEMPT_NUMBER".into(), ta.retry_attempt.to_string());
        let whole = ta.array_index.is_some() && plugin.whole_array_inputs();
        let (inputs_path, inputs) = if whole {
            // Flyte's way for map tasks: every element reads the array node's inputs and picks
            // its own by index.
            let key = layout.inputs(&self.id, node, None);
            if !self.whole_inputs_written.contains(node) {
                let whole_inputs = self
                    .exec
                    .node_execution_inputs(node)
                    .cloned()
                    .unwrap_or_default();
                write_object(layout, &key, whole_inputs.encode_to_vec()).await?;
                self.whole_inputs_written.insert(node.to_string());
            }
            let index = ta.array_index.unwrap_or_default();
            env.insert(
                "BATCH_JOB_ARRAY_INDEX_VAR_NAME".into(),
                "FLYTE_K8S_ARRAY_INDEX".into(),
            );
            env.insert("FLYTE_K8S_ARRAY_INDEX".into(), index.to_string());
            (key, ta.inputs.clone())
        } else {
            let key = layout.inputs(&self.id, node, ta.array_index);
            write_object(layout, &key, ta.inputs.encode_to_vec()).await?;
            (key, ta.inputs.clone())
        };
        let output_prefix = layout.output_prefix(&self.id, node, ta.array_index, ta.retry_attempt);
        let prev = ta.retry_attempt.checked_sub(1).map(|r| {
            let prefix = layout.output_prefix(&self.id, node, ta.array_index, r);
            layout.location(&format!("{prefix}/_flytecheckpoints"))
        });
        Ok(Attempt {
            execution: self.id.clone(),
            node_id: node.to_string(),
            retry_attempt: ta.retry_attempt,
            array_index: ta.array_index,
            task: ta.task.clone(),
            overrides: ta.overrides.clone(),
            inputs: Arc::new(inputs),
            inputs_path: layout.location(&inputs_path),
            checkpoint_prefix: layout.location(&format!("{output_prefix}/_flytecheckpoints")),
            output_prefix: layout.location(&output_prefix),
            raw_output_prefix: layout.raw_location(
                self.attempt_settings.raw_output_prefix.as_deref(),
                &self.id,
                node,
                ta.array_index,
                ta.retry_attempt,
            ),
            prev_checkpoint_prefix: prev,
            env,
            settings: self.attempt_settings.clone(),
        })
    }

    pub(super) fn waker(&self, id: AttemptId) -> Waker {
        Waker::new(self.wake_tx.clone(), id)
    }

    /// Starts an attempt whose start already failed transiently `failures` times.
    pub(super) async fn start(&mut self, ta: TaskAttempt, failures: u32) -> Result<(), DriveError> {
        if failures == 0 && !self.may_start(&ta).await? {
            return Ok(());
        }
        let plugin_ix = match self.plugin_for(&ta) {
            Ok(ix) => ix,
            Err(refusal) => {
                return self.finished(
                    ta.id,
                    TaskOutcome::FailedPermanently(crate::outcome::error(
                        "NoPlugin",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::User,
                        refusal.to_string(),
                    )),
                )
            }
        };
        let plugin = self.ctx.registry.plugins()[plugin_ix].clone();
        let attempt = self.prepare(&ta, plugin.as_ref()).await?;
        let cache_key = self.cache_key(&ta);
        let result = plugin.start(&attempt, self.waker(ta.id)).await;
        let id = ta.id;
        self.live.insert(
            id,
            Live {
                attempt,
                plugin: plugin_ix,
                cache_key,
            },
        );
        if result.is_ok() {
            self.report_log_links(plugin.as_ref(), id);
        }
        match &result {
            Ok(()) => self.ctx.metrics.attempt_started(plugin_ix),
            Err(PluginError::AlreadyStarted(_)) => {}
            Err(_) => self.ctx.metrics.attempt_start_failed(plugin_ix),
        }
        match result {
            Ok(()) => Ok(()),
            // Started before a crash: its marker is there, so look at it instead.
            Err(PluginError::AlreadyStarted(_)) => self.attempt_changed(id).await,
            Err(PluginError::Invalid(message)) => {
                self.live.remove(&id);
                self.finished(
                    id,
                    TaskOutcome::FailedPermanently(crate::outcome::error(
                        "InvalidTask",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::User,
                        message,
                    )),
                )
            }
            Err(PluginError::Transient(message)) if failures + 1 < MAX_START_TRIES => {
                self.live.remove(&id);
                let delay = FIRST_START_BACKOFF * 2u32.pow(failures);
                tracing::warn!(
                    execution = %exec_name(&self.key),
                    node = %ta.node_execution_id,
                    error = %message,
                    retry_in = ?delay,
                    "starting the attempt failed; trying again"
                );
                self.retry_starts
                    .push((Instant::now() + delay, failures + 1, ta));
                Ok(())
            }
            Err(PluginError::Transient(message)) => {
                self.live.remove(&id);
                self.finished(
                    id,
                    TaskOutcome::Failed(crate::outcome::error(
                        "PluginError",
                        alula_idl::flyteidl::core::execution_error::ErrorKind::System,
                        message,
                    )),
                )
            }
        }
    }

    /// After a resume: find what became of every attempt the saved state says is running.
    pub(super) async fn reattach(&mut self) -> Result<(), DriveError> {
        let ids: Vec<AttemptId> = self.exec.running_attempts().map(|(a, _, _)| a).collect();
        for id in ids {
            let Some(ta) = self.exec.running_attempt(id) else {
                continue;
            };
            let Ok(plugin_ix) = self.plugin_for(&ta) else {
                // `start` fails it with the refusal.
                self.to_start.push(ta);
                continue;
            };
            let plugin = self.ctx.registry.plugins()[plugin_ix].clone();
            let attempt = self.prepare(&ta, plugin.as_ref()).await?;
            let status = plugin.check(&attempt, self.waker(id)).await;
            match status {
                Ok(AttemptStatus::NotStarted) => self.to_start.push(ta),
                Ok(_) | Err(_) => {
                    self.resume_reservation(&ta).await?;
                    if attempt.array_index.is_some() {
                        // Links are not saved: hand them in again.
                        let links = self.log_links(plugin.as_ref(), &attempt);
                        self.exec.set_attempt_logs(id, links);
                    }
                    let cache_key = self.cache_key(&ta);
                    self.live.insert(
                        id,
                        Live {
                            attempt,
                            plugin: plugin_ix,
                            cache_key,
                        },
                    );
                    self.attempt_changed(id).await?;
                }
            }
        }
        if !self.to_start.is_empty() {
            // Starting them needs no new save: the saved state already records them.
            self.act().await?;
        }
        Ok(())
    }

    /// An attempt may have changed: ask its plugin, and tell the engine if it ended.
    pub(super) async fn attempt_changed(&mut self, id: AttemptId) -> Result<(), DriveError> {
        let Some(live) = self.live.get(&id) else {
            return Ok(()); // ended or aborted already
        };
        let plugin = self.ctx.registry.plugins()[live.plugin].clone();
        let status = match plugin.check(&live.attempt, self.waker(id)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(attempt = %live.attempt.unique_name(), error = %e, "check failed; will retry");
                return Ok(());
            }
        };
        let outcome = match status {
            AttemptStatus::Running => return Ok(()),
            AttemptStatus::NotStarted => AttemptStatus::Lost {
                message: "the attempt disappeared before it started".into(),
            },
            other => other,
        };
        let Some(live) = self.live.remove(&id) else {
            return Ok(());
        };
        let lost = matches!(outcome, AttemptStatus::Lost { .. });
        let a = &live.attempt;
        let output_prefix =
            self.ctx
                .layout
                .output_prefix(&self.id, &a.node_id, a.array_index, a.retry_attempt);
        let mut result = crate::outcome::read_outcome(
            self.ctx.layout.storage(),
            &output_prefix,
            &a.task,
            &outcome,
        )
        .await;
        if let TaskOutcome::Dynamic(spec) = &mut result {
            // Generated tasks get the execution's resources as its registered ones did.
            apply_task_resources(&mut spec.tasks, self.task_resources.as_ref());
        }
        if let (
            TaskOutcome::Succeeded {
                outputs,
                cache_status,
            },
            Some(key),
        ) = (&mut result, &live.cache_key)
        {
            self.ctx
                .plane
                .put_cached_outputs(
                    key,
                    outputs.encode_to_vec(),
                    &live.attempt.unique_name(),
                    alula_plane::now_micros(),
                )
                .await?;
            *cache_status = CatalogCacheStatus::CachePopulated;
        }
        self.store_logs(plugin.as_ref(), &live.attempt).await;
        let links = self.log_links(plugin.as_ref(), &live.attempt);
        if live.attempt.array_index.is_some() {
            // Before the engine hears of the end: the array node's terminal event may follow.
            self.exec.set_attempt_logs(id, links);
        } else {
            self.end_links = Some((a.node_id.clone(), a.retry_attempt, links));
        }
        // After the outputs are in the cache: a waiter that looks next finds them.
        self.release_reservation(id).await;
        if let Err(e) = plugin.finalize(&live.attempt).await {
            tracing::warn!(attempt = %live.attempt.unique_name(), error = %e, "finalize failed");
        }
        let counted = match &result {
            _ if lost => AttemptOutcome::Lost,
            TaskOutcome::Succeeded { .. } | TaskOutcome::Dynamic(_) => AttemptOutcome::Succeeded,
            TaskOutcome::Failed(_) | TaskOutcome::FailedPermanently(_) => AttemptOutcome::Failed,
        };
        self.ctx.metrics.attempt_finished(live.plugin, counted);
        self.finished(id, result)
    }

    pub(super) fn finished(
        &mut self,
        id: AttemptId,
        outcome: TaskOutcome,
    ) -> Result<(), DriveError> {
        self.dirty = true;
        match self.exec.task_finished(id, outcome, SystemTime::now()) {
            // Aborted or timed out meanwhile: the engine has moved on.
            Err(alula_engine::EngineError::UnknownAttempt(_)) => {}
            other => other?,
        }
        // Taken now, not at the next advance: an attempt that fails while being started (no
        // plugin, a command that does not exist) may end the execution before another advance,
        // and its terminal events must be saved with the state that records the end.
        self.collect_events();
        Ok(())
    }

    /// Moves the events the engine recorded into the ones the next save writes to the outbox.
    pub(super) fn collect_events(&mut self) {
        let mut events = self.exec.take_events();
        if let Some((node, retry, links)) = self.end_links.take() {
            for event in &mut events {
                if let Event::Task(t) = event {
                    let of_attempt = t.retry_attempt == retry
                        && t.task_type != "k8s-array"
                        && t.parent_node_execution_id
                            .as_ref()
                            .is_some_and(|p| p.node_id == node);
                    if of_attempt {
                        t.logs = links.clone();
                    }
                }
            }
        }
        if !events.is_empty() {
            self.dirty = true;
            self.pending_events.extend(events.iter().map(encode_event));
        }
    }

    /// Links of an attempt's logs: admin's log route for each log its plugin keeps, then the
    /// plugin's own links.
    pub(super) fn log_links(&self, plugin: &dyn Plugin, attempt: &Attempt) -> Vec<TaskLog> {
        let mut links = Vec::new();
        if let Some(base) = &self.ctx.config.log_base_url {
            let id = log_id(attempt);
            links.extend(plugin.log_streams().iter().map(|stream| TaskLog {
                uri: log_url(base, &id, stream),
                name: (*stream).to_string(),
                ..Default::default()
            }));
        }
        links.extend(plugin.log_links(attempt));
        links
    }

    /// Tells admin where a just-started attempt's logs are: a RUNNING event of the next phase
    /// version (flytepropeller reports new logs of a phase so), after the engine's own RUNNING
    /// event in the outbox. Array elements are reported by their array node's event instead:
    /// the engine is handed their links.
    pub(super) fn report_log_links(&mut self, plugin: &dyn Plugin, id: AttemptId) {
        let Some(live) = self.live.get(&id) else {
            return;
        };
        let a = &live.attempt;
        let logs = self.log_links(plugin, a);
        if a.array_index.is_some() {
            self.exec.set_attempt_logs(id, logs);
            return;
        }
        if logs.is_empty() {
            return;
        }
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let now = Some(alula_idl::wkt::Timestamp {
            seconds: since_epoch.as_secs() as i64,
            nanos: since_epoch.subsec_nanos() as i32,
        });
        let event = TaskExecutionEvent {
            task_id: a.task.id.clone(),
            parent_node_execution_id: Some(NodeExecutionIdentifier {
                node_id: a.node_id.clone(),
                execution_id: Some(self.id.clone()),
            }),
            retry_attempt: a.retry_attempt,
            phase: task_execution::Phase::Running as i32,
            phase_version: 1,
            producer_id: self.ctx.config.instance_id.clone(),
            logs,
            occurred_at: now,
            task_type: a.task.r#type.clone(),
            event_version: 1,
            reported_at: now,
            ..Default::default()
        };
        self.dirty = true;
        self.pending_events
            .push(encode_event(&Event::Task(Box::new(event))));
    }

    /// Stores the ended attempt's logs under its output prefix (`logs/<stream>.txt`), where
    /// admin's log route reads them. A log that cannot be stored is not worth failing the task.
    pub(super) async fn store_logs(&self, plugin: &dyn Plugin, attempt: &Attempt) {
        let id = log_id(attempt);
        for (stream, data) in plugin.logs(attempt).await {
            let key = log_key(&id, stream);
            let storage = self.ctx.layout.storage();
            let stored = match data {
                // Written in place (local storage): nothing to copy.
                LogData::File(path) if path == self.ctx.layout.location(&key) => continue,
                LogData::File(path) => log_upload::store_log_file(storage, &key, &path).await,
                LogData::Bytes(bytes) => storage
                    .put(&key, bytes.into())
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = stored {
                tracing::warn!(key, error = %e, "cannot store a task log");
            }
        }
    }

    pub(super) fn cache_key(&self, ta: &TaskAttempt) -> Option<String> {
        let key = alula_core::cache::cache_key(&ta.task, &ta.inputs)?;
        Some(format!(
            "{}/{}/{}",
            self.id.project,
            self.id.domain,
            key.digest()
        ))
    }

    pub(super) async fn cache_lookup(
        &self,
        ta: &TaskAttempt,
    ) -> Result<Option<LiteralMap>, DriveError> {
        if self.overwrite_cache {
            return Ok(None);
        }
        let Some(key) = self.cache_key(ta) else {
            return Ok(None);
        };
        let Some(bytes) = self.ctx.plane.cached_outputs(&key).await? else {
            return Ok(None);
        };
        Ok(LiteralMap::decode(bytes.as_slice()).ok())
    }
}

/// The id admin's log route knows an attempt by.
fn log_id(attempt: &Attempt) -> AttemptLogId {
    AttemptLogId {
        project: attempt.execution.project.clone(),
        domain: attempt.execution.domain.clone(),
        name: attempt.execution.name.clone(),
        node_id: attempt.node_id.clone(),
        retry_attempt: attempt.retry_attempt,
        array_index: attempt.array_index,
    }
}

/// Writes an object the driver hands to a task (its inputs); the error names the object.
async fn write_object(layout: &crate::Layout, key: &str, bytes: Vec<u8>) -> Result<(), DriveError> {
    layout
        .storage()
        .put(key, bytes.into())
        .await
        .map_err(|e| DriveError::Storage(e.to_string()))
}
