-- Event ingestion (CreateWorkflowEvent/CreateNodeEvent/CreateTaskEvent) and the node and task
-- execution records it maintains. Timestamps are microseconds since the Unix epoch.

-- The workflow's outputs as a core.LiteralMap (inline event data; empty bytes until then), and the
-- occurred_at of the last event applied, so that late, older events cannot move the phase back.
ALTER TABLE executions ADD COLUMN outputs BYTEA NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN last_event_at BIGINT NOT NULL DEFAULT 0;

-- One row per node of an execution (node ids are unique within an execution, nested ones
-- included). parent_id is the unique id of the parent node ('' at the top level); parent_task
-- identifies the task execution that spawned the node (dynamic tasks), '' otherwise.
CREATE TABLE node_executions (
    project       TEXT   NOT NULL,
    domain        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    node_id       TEXT   NOT NULL,
    phase         TEXT   NOT NULL, -- core.NodeExecution.Phase name
    parent_id     TEXT   NOT NULL,
    parent_task   TEXT   NOT NULL,
    input_uri     TEXT   NOT NULL,
    closure       BYTEA   NOT NULL, -- admin.NodeExecutionClosure
    metadata      BYTEA   NOT NULL, -- admin.NodeExecutionMetaData
    inputs        BYTEA   NOT NULL, -- core.LiteralMap when the event carried the data inline, else empty
    outputs       BYTEA   NOT NULL,
    last_event_at BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name, node_id)
);
CREATE INDEX node_executions_parent ON node_executions (project, domain, name, parent_id);
CREATE INDEX node_executions_parent_task ON node_executions (parent_task);

-- One row per attempt of a task in a node.
CREATE TABLE task_executions (
    project       TEXT   NOT NULL,
    domain        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    node_id       TEXT   NOT NULL,
    task_project  TEXT   NOT NULL,
    task_domain   TEXT   NOT NULL,
    task_name     TEXT   NOT NULL,
    task_version  TEXT   NOT NULL,
    retry_attempt BIGINT NOT NULL,
    phase         TEXT   NOT NULL, -- core.TaskExecution.Phase name
    phase_version BIGINT NOT NULL,
    input_uri     TEXT   NOT NULL,
    closure       BYTEA   NOT NULL, -- admin.TaskExecutionClosure
    inputs        BYTEA   NOT NULL,
    outputs       BYTEA   NOT NULL,
    last_event_at BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name, node_id, task_project, task_domain, task_name, task_version, retry_attempt)
);
