//! Recompiles real compiled workflows: every `*.pb` file in the directory named by
//! `ALULA_COMPILER_CORPUS` holds an encoded `flyteidl.core.CompiledWorkflowClosure` (the
//! `compiled_workflow` admin stores for a registered workflow). Each is compiled again from its
//! templates and tasks; it must compile, and give the same connection sets as the stored one.
//! Workflows that call launch plans are skipped: the closure does not carry their interfaces.
//! Without the variable the test does nothing.

use std::path::PathBuf;

use alula_compiler::compile_workflow;
use alula_idl::flyteidl::core::{
    node, workflow_node, CompiledWorkflowClosure, Node, WorkflowTemplate,
};
use prost::Message;

fn calls_launch_plan(n: &Node) -> bool {
    matches!(&n.target, Some(node::Target::WorkflowNode(w)) if matches!(w.reference, Some(workflow_node::Reference::LaunchplanRef(_))))
}

#[test]
fn recompiles_every_closure_in_the_corpus() {
    let Ok(dir) = std::env::var("ALULA_COMPILER_CORPUS") else {
        eprintln!("ALULA_COMPILER_CORPUS is not set; nothing to recompile");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "pb"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.pb files in {dir}");
    let (mut compiled, mut skipped) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stored = CompiledWorkflowClosure::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{}: not a CompiledWorkflowClosure: {e}", path.display()));
        let template_of = |c: &alula_idl::flyteidl::core::CompiledWorkflow| -> WorkflowTemplate {
            let mut t = c.template.clone().unwrap_or_default();
            // The stored template includes the sentinel nodes the compiler adds.
            t.nodes
                .retain(|n| n.id != "start-node" && n.id != "end-node");
            t
        };
        let Some(primary) = stored.primary.as_ref() else {
            panic!("{}: closure has no primary workflow", path.display());
        };
        let subs: Vec<WorkflowTemplate> = stored.sub_workflows.iter().map(template_of).collect();
        let primary_template = template_of(primary);
        if primary_template
            .nodes
            .iter()
            .chain(subs.iter().flat_map(|s| &s.nodes))
            .any(calls_launch_plan)
        {
            skipped += 1;
            continue;
        }
        let result = compile_workflow(&primary_template, &subs, &stored.tasks, &[])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = result
            .primary
            .and_then(|p| p.connections)
            .unwrap_or_default();
        assert_eq!(
            Some(&got),
            primary.connections.as_ref(),
            "{}: connection sets differ",
            path.display()
        );
        compiled += 1;
    }
    eprintln!("recompiled {compiled} closures, skipped {skipped} calling launch plans");
}
