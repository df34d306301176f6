//! Dynamic workflows: a dynamic task's attempt returns a workflow (a `DynamicJobSpec`), which
//! is compiled and runs in a scope of its own under the task's node; the node ends with that
//! scope. An empty spec (a fan-out over nothing) ends the node at once with its bindings.

use std::sync::Arc;

use alula_idl::flyteidl::core::{
    execution_error::ErrorKind, CatalogCacheStatus, CompiledWorkflowClosure, DynamicJobSpec,
    Literal, TaskTemplate,
};

use crate::bindings;
use crate::execution::{engine_error, Execution};
use crate::program::GraphSource;
use crate::state::{KindState, NodePhase};

impl Execution {
    /// Task node `n`'s attempt `retry` of `task` returned the workflow `spec` to run in its place.
    pub(crate) fn dynamic_returned(
        &mut self,
        n: u32,
        spec: DynamicJobSpec,
        task: Option<Arc<TaskTemplate>>,
        retry: u32,
    ) {
        match spec {
            spec if spec.nodes.is_empty() => {
                // Nothing to run (a fan-out over nothing): the outputs are the spec's
                // bindings, constants all, as flytekit resolves them.
                struct NoUpstream;
                impl bindings::Outputs for NoUpstream {
                    fn output(&self, _: &str, _: &str) -> Option<&Literal> {
                        None
                    }
                }
                let node_id = self.state.nodes[n as usize].id.clone();
                match bindings::resolve(&node_id, &spec.outputs, &NoUpstream) {
                    Ok(outputs) => {
                        if let Some(task) = &task {
                            self.events.task_succeeded(
                                &self.state,
                                n,
                                task,
                                retry,
                                &outputs,
                                CatalogCacheStatus::CacheDisabled,
                                self.now_us,
                            );
                        }
                        self.succeed_node(n, outputs)
                    }
                    Err(e) => self.fail_node(
                        n,
                        engine_error("DynamicWorkflowError", ErrorKind::User, e.to_string()),
                        NodePhase::Failed,
                    ),
                }
            }
            spec => {
                let inputs = self.node_inputs(n);
                let node = &self.state.nodes[n as usize];
                let source = GraphSource::Dynamic {
                    spec,
                    interface: task.as_ref().and_then(|t| t.interface.clone()),
                    node_id: node.id.clone(),
                };
                match self.program.build(&source) {
                    Ok(g) => {
                        self.state.graph_sources.push(source);
                        let prefix = format!("{}-0-", node.id);
                        let scope = self.state.scopes.len() as u32;
                        let node = &mut self.state.nodes[n as usize];
                        node.kind = KindState::Scope { scope };
                        node.phase = NodePhase::DynamicRunning;
                        let compiled = self.program.take_dynamic_closure();
                        if let Some(task) = &task {
                            // The task's attempt is over: it returned the workflow to run.
                            self.events.task(
                                &self.state.nodes[n as usize],
                                task,
                                retry,
                                crate::events::TaskPhase::Succeeded,
                                None,
                                self.now_us,
                            );
                        }
                        if self.events.enabled() {
                            let closure =
                                compiled.unwrap_or_else(|| match self.state.graph_sources.last() {
                                    Some(GraphSource::Dynamic { spec, node_id, .. }) => {
                                        crate::events::uncompiled_dynamic_closure(
                                            &self.program,
                                            g,
                                            spec,
                                            node_id,
                                        )
                                    }
                                    _ => CompiledWorkflowClosure::default(),
                                });
                            self.events.node_dynamic(
                                &self.program,
                                &self.state,
                                n,
                                closure,
                                self.now_us,
                            );
                        }
                        self.start_scope(g, Some(n), prefix, inputs);
                    }
                    Err(e) => {
                        let err =
                            engine_error("DynamicWorkflowError", ErrorKind::User, e.to_string());
                        if let Some(task) = &task {
                            self.events.task(
                                &self.state.nodes[n as usize],
                                task,
                                retry,
                                crate::events::TaskPhase::Failed,
                                Some(&err),
                                self.now_us,
                            );
                        }
                        self.fail_node(n, err, NodePhase::Failed)
                    }
                }
            }
        }
    }
}
