-- Signals of gate nodes, one row per (execution, signal id). `type` is the core.LiteralType the
-- gate expects; `value` the core.Literal set by SetSignal, empty until then (an empty literal has
-- no type, so it can never be a value that passed SetSignal's type check).
CREATE TABLE signals (
    project    TEXT   NOT NULL,
    domain     TEXT   NOT NULL,
    name       TEXT   NOT NULL, -- the execution's name
    signal_id  TEXT   NOT NULL,
    type       BLOB  NOT NULL,
    value      BLOB  NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, domain, name, signal_id)
);
