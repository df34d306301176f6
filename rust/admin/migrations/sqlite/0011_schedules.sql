-- Launch-plan schedules (issue 16): one row per launch plan name whose active version has a
-- schedule. Activation writes it, deactivation deletes it; the scheduler reads the due rows.

CREATE TABLE schedules (
    project          TEXT NOT NULL,
    domain           TEXT NOT NULL,
    name             TEXT NOT NULL,
    -- The active version the row schedules.
    version          TEXT NOT NULL,
    -- The launch plan's admin.Schedule, encoded.
    schedule         BLOB NOT NULL,
    -- The earliest tick not launched yet (micros since the epoch, UTC).
    next_tick        BIGINT NOT NULL,
    -- The scheduler instance launching the pending tick, until lease_expires_at (micros); ''
    -- when none. A lease that expires (its holder died) is taken over by another instance.
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expires_at BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name)
);
CREATE INDEX schedules_by_next_tick ON schedules (next_tick);
