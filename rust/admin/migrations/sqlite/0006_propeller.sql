-- Propeller's working records, kept in admin's database so that several propeller instances can
-- share the work: a lease per execution (owner + expiry, renewed while it runs; an expired lease
-- is taken over), the engine's serialized state, written before any attempt it records is
-- started, and an outbox of events written in the same transaction as the state, so that a crash
-- can neither lose an event nor let a replay invent a second one.
CREATE TABLE propeller_runs (
    project     TEXT   NOT NULL,
    domain      TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    owner       TEXT   NOT NULL, -- the instance holding the lease, '' when released
    lease_until BIGINT NOT NULL, -- microseconds since the epoch
    state       BLOB  NOT NULL, -- the engine's ExecutionState (JSON), empty before the first step
    generation  BIGINT NOT NULL, -- bumped by every save
    next_event  BIGINT NOT NULL, -- sequence number of the next outbox event
    done        BIGINT NOT NULL, -- 1 once terminal with every event delivered
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name)
);
CREATE INDEX propeller_runs_open ON propeller_runs (done, lease_until);
-- Claims look for executions in active phases across projects.
CREATE INDEX executions_phase_only ON executions (phase);

-- Events not yet delivered to admin's ingestion, in order per execution.
CREATE TABLE propeller_outbox (
    project TEXT   NOT NULL,
    domain  TEXT   NOT NULL,
    name    TEXT   NOT NULL,
    seq     BIGINT NOT NULL,
    kind    BIGINT NOT NULL, -- 0 workflow, 1 node, 2 task execution event
    event   BLOB  NOT NULL, -- the flyteidl event message
    PRIMARY KEY (project, domain, name, seq)
);

-- Task outputs by cache key (datacatalog's artifacts): the key covers the task's name, cache
-- version, interface and inputs, not the task's version, so re-registering keeps the cache.
CREATE TABLE task_cache (
    cache_key  TEXT   NOT NULL PRIMARY KEY,
    outputs    BLOB  NOT NULL, -- core.LiteralMap
    source     TEXT   NOT NULL, -- the execution/node/attempt that produced it
    created_at BIGINT NOT NULL
);
