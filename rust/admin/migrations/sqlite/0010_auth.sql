-- Who may do what (issue 15): the built-in authorization server's machine clients and signing
-- keys, role bindings made with `alula auth grant`, and the audit log of mutating calls.

-- Machine clients of the built-in authorization server. Only a hash of the secret is kept: the
-- secret is printed once, at creation.
CREATE TABLE auth_clients (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    -- 0 while the client may get tokens; the time (micros) it was revoked after.
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

-- The built-in server's ES256 keys. Tokens are signed by the newest key not retired; a retired
-- key still verifies tokens until retired_at plus the longest token lifetime, so a rotation
-- never refuses a token issued just before it.
CREATE TABLE auth_signing_keys (
    kid        TEXT PRIMARY KEY,
    pkcs8      BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT NOT NULL DEFAULT 0
);

-- Roles given in the database (the server's settings may give more). subject: `user:NAME`,
-- `group:NAME` or `client:ID`; project and domain: a name or '*'.
CREATE TABLE auth_role_bindings (
    subject    TEXT NOT NULL,
    project    TEXT NOT NULL,
    domain     TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (subject, project, domain)
);

-- Every mutating call (and every refused one) with who, what, when and the outcome.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    principal TEXT NOT NULL,
    method    TEXT NOT NULL,
    project   TEXT NOT NULL,
    domain    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    code      TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX audit_log_by_project ON audit_log (project, at);
