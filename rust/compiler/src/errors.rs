//! Flyte's compile error model: a code clients match on, the node at fault and a description.
//! Errors are collected, never fail-fast, so one registration reports every problem at once.

use std::fmt;

/// Flyte's compiler error codes; [`ErrorCode::as_str`] is the string clients see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    CycleDetected,
    BranchNodeIdNotFound,
    BranchNodeHasNoCondition,
    BranchNodeHasNoDefault,
    ValueRequired,
    InvalidValue,
    NodeReferenceNotFound,
    TaskReferenceNotFound,
    WorkflowReferenceNotFound,
    VariableNameNotFound,
    DuplicateAlias,
    DuplicateId,
    MismatchingTypes,
    MismatchingBindings,
    MismatchingInterfaces,
    InconsistentTypes,
    ParameterBoundMoreThanOnce,
    ParameterNotBound,
    NoEntryNodeFound,
    UnreachableNodes,
    UnrecognizedValue,
    WorkflowBuildError,
    ValueCollision,
    SyntaxError,
    NoNodesFound,
    IllegalEnumValue,
    AmbiguousBindingUnionValue,
    IncompatibleBindingUnionValue,
    NoConditionFound,
    FieldNotFound,
    InvalidLiteralType,
}

impl ErrorCode {
    /// The code as Flyte spells it on the wire and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CycleDetected => "CycleDetected",
            Self::BranchNodeIdNotFound => "BranchNodeIdNotFound",
            Self::BranchNodeHasNoCondition => "BranchNodeHasNoCondition",
            Self::BranchNodeHasNoDefault => "BranchNodeHasNoDefault",
            Self::ValueRequired => "ValueRequired",
            Self::InvalidValue => "InvalidValue",
            Self::NodeReferenceNotFound => "NodeReferenceNotFound",
            Self::TaskReferenceNotFound => "TaskReferenceNotFound",
            Self::WorkflowReferenceNotFound => "WorkflowReferenceNotFound",
            Self::VariableNameNotFound => "VariableNameNotFound",
            Self::DuplicateAlias => "DuplicateAlias",
            Self::DuplicateId => "DuplicateId",
            Self::MismatchingTypes => "MismatchingTypes",
            Self::MismatchingBindings => "MismatchingBindings",
            Self::MismatchingInterfaces => "MismatchingInterfaces",
            Self::InconsistentTypes => "InconsistentTypes",
            Self::ParameterBoundMoreThanOnce => "ParameterBoundMoreThanOnce",
            Self::ParameterNotBound => "ParameterNotBound",
            Self::NoEntryNodeFound => "NoEntryNodeFound",
            Self::UnreachableNodes => "UnreachableNodes",
            Self::UnrecognizedValue => "UnrecognizedValue",
            Self::WorkflowBuildError => "WorkflowBuildError",
            Self::ValueCollision => "ValueCollision",
            Self::SyntaxError => "SyntaxError",
            Self::NoNodesFound => "NoNodesFound",
            Self::IllegalEnumValue => "IllegalEnumValue",
            Self::AmbiguousBindingUnionValue => "AmbiguousBindingUnionValue",
            Self::IncompatibleBindingUnionValue => "IncompatibleBindingUnionValue",
            Self::NoConditionFound => "NoConditionFound",
            Self::FieldNotFound => "FieldNotFound",
            Self::InvalidLiteralType => "InvalidLiteralType",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compile error.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompileError {
    pub code: ErrorCode,
    pub node_id: String,
    pub description: String,
}

impl CompileError {
    pub fn new(
        code: ErrorCode,
        node_id: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            code,
            node_id: node_id.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Code: {}, Node Id: {}, Description: {}",
            self.code, self.node_id, self.description
        )
    }
}

/// Every error found while compiling, sorted and deduplicated so the message is deterministic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CompileErrors {
    errors: Vec<CompileError>,
}

impl CompileErrors {
    /// Sorts and deduplicates collected errors; `None` when there is nothing to report.
    pub fn from_collected(mut errors: Vec<CompileError>) -> Option<Self> {
        if errors.is_empty() {
            return None;
        }
        errors.sort();
        errors.dedup();
        Some(Self { errors })
    }

    pub fn errors(&self) -> &[CompileError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<CompileError> {
        self.errors
    }
}

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Collected Errors: {}", self.errors.len())?;
        for (i, e) in self.errors.iter().enumerate() {
            write!(f, "\n\tError {i}: {e}")?;
        }
        Ok(())
    }
}
