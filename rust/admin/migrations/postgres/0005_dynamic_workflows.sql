-- The compiled workflow a dynamic node ran (a core.CompiledWorkflowClosure from the node's
-- event), served by GetDynamicNodeWorkflow; empty for other nodes.
ALTER TABLE node_executions ADD COLUMN dynamic_workflow BYTEA NOT NULL DEFAULT '';
