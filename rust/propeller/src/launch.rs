//! The platform resources of the tasks a dynamic node generates.

use alula_core::task_resources;
use alula_idl::flyteidl::admin::TaskResourceAttributes;
use alula_idl::flyteidl::core::TaskTemplate;

/// Gives `tasks` the execution's resource defaults and limits: those a dynamic task generates
/// while it runs (its `DynamicJobSpec`), as admin gave the tasks of its closure.
pub fn apply_task_resources<'a>(
    tasks: impl IntoIterator<Item = &'a mut TaskTemplate>,
    platform: Option<&TaskResourceAttributes>,
) {
    let Some(platform) = platform else {
        return;
    };
    for template in tasks {
        task_resources::apply(template, platform);
    }
}
