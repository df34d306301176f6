//! What the compiler needs to know of a launch plan a node calls: its id and the inputs and
//! outputs it exposes (admin's `closure.expected_inputs` / `expected_outputs`).

use alula_idl::flyteidl::admin::LaunchPlan;
use alula_idl::flyteidl::core::{Identifier, ParameterMap, VariableMap};

/// The interface of a launch plan, as a launch-plan node sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchPlanInterface {
    pub id: Identifier,
    pub inputs: ParameterMap,
    pub outputs: VariableMap,
}

/// Why a launch plan cannot provide an interface.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LaunchPlanInterfaceError {
    #[error("launch plan has no id")]
    MissingId,
    #[error("launch plan {0} has no closure: expected_inputs/expected_outputs are computed by admin at registration")]
    MissingClosure(String),
}

impl TryFrom<&LaunchPlan> for LaunchPlanInterface {
    type Error = LaunchPlanInterfaceError;

    fn try_from(lp: &LaunchPlan) -> Result<Self, Self::Error> {
        let id = lp.id.clone().ok_or(LaunchPlanInterfaceError::MissingId)?;
        let closure = lp.closure.as_ref().ok_or_else(|| {
            LaunchPlanInterfaceError::MissingClosure(alula_core::ids::IdDisplay(&id).to_string())
        })?;
        Ok(Self {
            id,
            inputs: closure.expected_inputs.clone().unwrap_or_default(),
            outputs: closure.expected_outputs.clone().unwrap_or_default(),
        })
    }
}
