-- Cache serialization (flytekit's cache_serialize=True; datacatalog's reservations): of the
-- attempts of one cacheable task with the same cache key running at once, the one holding the
-- reservation runs and the others wait for its outputs in task_cache. The holder renews it
-- (a heartbeat) while it runs; an expired reservation is taken over, so a crashed owner blocks
-- the others for one expiry at most.
CREATE TABLE cache_reservations (
    cache_key  TEXT   NOT NULL PRIMARY KEY, -- the key of task_cache the outputs will go to
    owner      TEXT   NOT NULL, -- the node execution holding it (stable across retries)
    expires_at BIGINT NOT NULL, -- microseconds since the epoch
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
