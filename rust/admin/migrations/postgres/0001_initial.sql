-- Alula admin schema (PostgreSQL). Payloads are protobuf bytes; only the columns that lists filter
-- and sort on are real columns. Timestamps are microseconds since the Unix epoch, so the same
-- queries work on SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE projects (
    identifier  TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    state       BIGINT NOT NULL,
    org         TEXT    NOT NULL,
    -- admin.Project without domains (domains come from configuration)
    project     BYTEA    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- tasks, workflows and launch plans share their key and payload columns so one set of queries
-- serves the three; each adds the columns its lists filter on.
CREATE TABLE tasks (
    project    TEXT   NOT NULL,
    domain     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    digest     BYTEA   NOT NULL, -- SHA-256 of what registration compiled: identical re-creates are no-ops
    spec       BYTEA   NOT NULL,
    closure    BYTEA   NOT NULL,
    state      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    task_type         TEXT NOT NULL,
    short_description TEXT NOT NULL,
    PRIMARY KEY (project, domain, name, version)
);
CREATE INDEX tasks_created_at ON tasks (project, domain, created_at);

CREATE TABLE workflows (
    project    TEXT   NOT NULL,
    domain     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    digest     BYTEA   NOT NULL, -- SHA-256 of what registration compiled: identical re-creates are no-ops
    spec       BYTEA   NOT NULL,
    closure    BYTEA   NOT NULL,
    state      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    short_description TEXT NOT NULL,
    PRIMARY KEY (project, domain, name, version)
);
CREATE INDEX workflows_created_at ON workflows (project, domain, created_at);

-- state: admin.LaunchPlanState (0 inactive, 1 active), at most one active version per name.
CREATE TABLE launch_plans (
    project    TEXT   NOT NULL,
    domain     TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    version    TEXT   NOT NULL,
    digest     BYTEA   NOT NULL, -- SHA-256 of what registration compiled: identical re-creates are no-ops
    spec       BYTEA   NOT NULL,
    closure    BYTEA   NOT NULL,
    state      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    workflow_name    TEXT NOT NULL,
    workflow_version TEXT NOT NULL,
    PRIMARY KEY (project, domain, name, version)
);
CREATE INDEX launch_plans_created_at ON launch_plans (project, domain, created_at);
CREATE INDEX launch_plans_active ON launch_plans (project, domain, name, state);

CREATE TABLE named_entity_metadata (
    resource_type BIGINT NOT NULL,
    project       TEXT    NOT NULL,
    domain        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    state         BIGINT NOT NULL,
    PRIMARY KEY (resource_type, project, domain, name)
);

CREATE TABLE description_entities (
    resource_type     BIGINT NOT NULL,
    project           TEXT    NOT NULL,
    domain            TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    version           TEXT    NOT NULL,
    short_description TEXT    NOT NULL,
    entity            BYTEA    NOT NULL, -- admin.DescriptionEntity
    created_at        BIGINT  NOT NULL,
    PRIMARY KEY (resource_type, project, domain, name, version)
);

CREATE TABLE executions (
    project          TEXT    NOT NULL,
    domain           TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    launch_entity    BIGINT NOT NULL, -- core.ResourceType of spec.launch_plan (TASK or LAUNCH_PLAN)
    launch_plan_name TEXT    NOT NULL,
    launch_plan_version TEXT NOT NULL,
    workflow_name    TEXT    NOT NULL,
    workflow_version TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    task_version     TEXT    NOT NULL,
    phase            TEXT    NOT NULL, -- core.WorkflowExecution.Phase name
    mode             BIGINT NOT NULL,
    spec             BYTEA    NOT NULL, -- admin.ExecutionSpec
    closure          BYTEA    NOT NULL, -- admin.ExecutionClosure
    inputs           BYTEA    NOT NULL, -- core.LiteralMap after defaults and fixed inputs
    user_inputs      BYTEA    NOT NULL, -- core.LiteralMap as the caller sent it
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (project, domain, name)
);
CREATE INDEX executions_created_at ON executions (project, domain, created_at);
CREATE INDEX executions_phase ON executions (project, domain, phase);
