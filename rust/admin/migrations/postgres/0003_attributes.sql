-- Matchable attributes (admin.MatchingAttributes as protobuf bytes), one row per level and
-- resource type. Levels flytectl does not set are empty strings, so the key stays a plain
-- primary key on both backends (NULLs would never conflict).
CREATE TABLE matchable_attributes (
    resource_type BIGINT NOT NULL, -- admin.MatchableResource
    org           TEXT   NOT NULL,
    project       TEXT   NOT NULL,
    domain        TEXT   NOT NULL,
    workflow      TEXT   NOT NULL,
    launch_plan   TEXT   NOT NULL,
    attributes    BYTEA  NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (resource_type, org, project, domain, workflow, launch_plan)
);
