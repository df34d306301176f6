-- What the console and flytectl filter executions on besides the launch entity and phase: who
-- launched them (`user`, spec.metadata.principal) and their labels and tags
-- (`execution_tag.key` / `execution_tag.value`, flyteadmin's names). Executions created before
-- this migration have an empty principal and no tag rows: their spec still has both.
ALTER TABLE executions ADD COLUMN principal TEXT NOT NULL DEFAULT '';

-- One row per label (key, value) and per tag (key, value '') of an execution, written with it.
CREATE TABLE execution_tags (
    project   TEXT NOT NULL,
    domain    TEXT NOT NULL,
    name      TEXT NOT NULL,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (project, domain, name, tag_key, tag_value)
);
CREATE INDEX execution_tags_by_tag ON execution_tags (project, domain, tag_key, tag_value, name);

-- Lists page newest first with the name as tiebreak (ORDER BY created_at DESC, name): with the
-- name in the index no sort step is needed, and a filtered list walks its own index in order.
DROP INDEX executions_created_at;
CREATE INDEX executions_created_at ON executions (project, domain, created_at, name);
DROP INDEX executions_phase;
CREATE INDEX executions_phase ON executions (project, domain, phase, created_at, name);
CREATE INDEX executions_workflow ON executions (project, domain, workflow_name, created_at, name);
CREATE INDEX executions_launch_plan ON executions (project, domain, launch_plan_name, created_at, name);
CREATE INDEX executions_task ON executions (project, domain, task_name, created_at, name);
CREATE INDEX executions_principal ON executions (project, domain, principal, created_at, name);
