//! Which tasks this deployment's data plane can run, when admin knows it (a propeller in the
//! same process hands admin its plugin registry): a task no plugin runs is refused at
//! registration and launch with INVALID_ARGUMENT, naming the task and its type, instead of
//! failing at its first attempt.

use std::sync::{Arc, OnceLock};

use alula_idl::flyteidl::core::TaskTemplate;

pub use alula_plane::ServedTasks;

/// Set once the data plane's plugins are known (after admin was built); unset, every task is
/// accepted (admin alone cannot know what a remote propeller runs).
#[derive(Clone, Default)]
pub struct ServedTasksSlot(Arc<OnceLock<Arc<dyn ServedTasks>>>);

impl ServedTasksSlot {
    /// Hands admin the data plane's answer; a second call is ignored.
    pub fn set(&self, served: Arc<dyn ServedTasks>) {
        let _ = self.0.set(served);
    }

    /// `Err(message)` when the data plane is known and runs no plugin for `task`.
    pub fn check(&self, task: &TaskTemplate) -> Result<(), String> {
        match self.0.get().and_then(|s| s.refusal(task)) {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }
}
