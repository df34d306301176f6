//! The workflow compiler, exposed to Python: protobuf bytes in, protobuf bytes out.

use alula_compiler::{CompileErrors, LaunchPlanInterface};
use alula_idl::flyteidl::admin::LaunchPlan;
use alula_idl::flyteidl::core::{CompiledTask, TaskTemplate, WorkflowTemplate};
use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

// Defined in Python (alula/errors.py) so that it derives from the SDK's one root, AlulaError.
pyo3::import_exception!(alula.errors, CompileError);

/// Compiles a workflow with its subworkflows, tasks and called launch plans.
///
/// Inputs are encoded `flyteidl.core.WorkflowTemplate` (primary, subworkflows),
/// `flyteidl.core.TaskTemplate` and `flyteidl.admin.LaunchPlan`; the result is an encoded
/// `flyteidl.core.CompiledWorkflowClosure`. Raises CompileError listing every problem found.
#[pyfunction]
fn compile_workflow(
    py: Python<'_>,
    primary: &[u8],
    subworkflows: Vec<Bound<'_, PyBytes>>,
    tasks: Vec<Bound<'_, PyBytes>>,
    launch_plans: Vec<Bound<'_, PyBytes>>,
) -> PyResult<Py<PyBytes>> {
    let primary: WorkflowTemplate = decode(primary, "flyteidl.core.WorkflowTemplate", "primary")?;
    let subworkflows = decode_all(
        &subworkflows,
        "flyteidl.core.WorkflowTemplate",
        "subworkflows",
    )?;
    let templates: Vec<TaskTemplate> = decode_all(&tasks, "flyteidl.core.TaskTemplate", "tasks")?;
    let lps: Vec<LaunchPlan> =
        decode_all(&launch_plans, "flyteidl.admin.LaunchPlan", "launch_plans")?;
    let lp_interfaces = lps
        .iter()
        .enumerate()
        .map(|(i, lp)| {
            LaunchPlanInterface::try_from(lp)
                .map_err(|e| PyValueError::new_err(format!("launch_plans[{i}]: {e}")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let result = py.detach(|| {
        // Every task is checked so that all their errors are reported together.
        let mut compiled_tasks = Vec::with_capacity(templates.len());
        let mut task_errors = Vec::new();
        for t in &templates {
            match alula_compiler::compile_task(t) {
                Ok(c) => compiled_tasks.push(c),
                Err(e) => task_errors.extend(e.into_errors()),
            }
        }
        if let Some(errs) = CompileErrors::from_collected(task_errors) {
            return Err(errs);
        }
        alula_compiler::compile_workflow(&primary, &subworkflows, &compiled_tasks, &lp_interfaces)
            .map(|closure| closure.encode_to_vec())
    });
    match result {
        Ok(bytes) => Ok(PyBytes::new(py, &bytes).unbind()),
        Err(errs) => Err(compile_error(py, &errs)),
    }
}

/// Validates an encoded `flyteidl.core.TaskTemplate`; returns the encoded `CompiledTask`.
#[pyfunction]
fn compile_task(py: Python<'_>, template: &[u8]) -> PyResult<Py<PyBytes>> {
    let template: TaskTemplate = decode(template, "flyteidl.core.TaskTemplate", "template")?;
    let result = py.detach(|| {
        alula_compiler::compile_task(&template).map(|t: CompiledTask| t.encode_to_vec())
    });
    match result {
        Ok(bytes) => Ok(PyBytes::new(py, &bytes).unbind()),
        Err(errs) => Err(compile_error(py, &errs)),
    }
}

fn decode<M: Message + Default>(bytes: &[u8], message: &str, argument: &str) -> PyResult<M> {
    M::decode(bytes).map_err(|e| {
        PyValueError::new_err(format!("{argument}: not a valid {message} encoding: {e}"))
    })
}

fn decode_all<M: Message + Default>(
    items: &[Bound<'_, PyBytes>],
    message: &str,
    argument: &str,
) -> PyResult<Vec<M>> {
    items
        .iter()
        .enumerate()
        .map(|(i, b)| decode(b.as_bytes(), message, &format!("{argument}[{i}]")))
        .collect()
}

/// A CompileError whose `errors` attribute lets the SDK point at the node's source line.
fn compile_error(py: Python<'_>, errs: &CompileErrors) -> PyErr {
    let err = CompileError::new_err(errs.to_string());
    let tuples: PyResult<Vec<Bound<'_, PyTuple>>> = errs
        .errors()
        .iter()
        .map(|e| {
            PyTuple::new(
                py,
                [e.code.as_str(), e.node_id.as_str(), e.description.as_str()],
            )
        })
        .collect();
    let attached = tuples
        .and_then(|t| PyList::new(py, t))
        .and_then(|list| err.value(py).setattr("errors", list));
    match attached {
        Ok(()) => err,
        Err(e) => e,
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CompileError", m.py().get_type::<CompileError>())?;
    m.add_function(wrap_pyfunction!(compile_workflow, m)?)?;
    m.add_function(wrap_pyfunction!(compile_task, m)?)?;
    Ok(())
}
