-- The notifications outbox: one row per (execution, phase, notification index) a launch plan
-- or an execution spec asks for, written in the transaction that records the phase change, so
-- a notification is neither lost (a crash right after the commit) nor queued twice (a repeated
-- event). Admin's sender loop claims due rows, sends them, and retries with backoff.
CREATE TABLE notification_outbox (
    project         TEXT NOT NULL,
    domain          TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- The WorkflowExecution.Phase name that triggered it.
    phase           TEXT NOT NULL,
    -- The notification's position in the list it came from.
    position        BIGINT NOT NULL,
    -- email, slack or pager_duty.
    channel         TEXT NOT NULL,
    -- JSON array of the recipients' addresses.
    recipients      TEXT NOT NULL,
    -- JSON object of the template variables, captured with the phase change.
    context         TEXT NOT NULL,
    -- pending, sent or failed.
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    -- When a pending row is next due (microseconds); a claim moves it forward as a lease.
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name, phase, position)
);
CREATE INDEX notification_outbox_due ON notification_outbox (state, next_attempt_at);
