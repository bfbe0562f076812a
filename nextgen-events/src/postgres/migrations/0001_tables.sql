-- The tables of nextgen-events 0.1: the handlers' claims and done markers, the object claims
-- and watermarks of `latest_only` handlers, and the inbox. `{schema}` is the schema's quoted
-- name. Times are Unix milliseconds, as the library's clock gives them.

-- One row per (event id, handler): a live claim, or a done marker until `until_ms`.
CREATE TABLE {schema}.nextgen_handlers (
    event_id text NOT NULL,
    handler text NOT NULL,
    state text NOT NULL CHECK (state IN ('claimed', 'done')),
    owner text,
    until_ms bigint NOT NULL,
    PRIMARY KEY (event_id, handler)
);
CREATE INDEX nextgen_handlers_until ON {schema}.nextgen_handlers (until_ms);

-- One row per (handler, object id) of a `latest_only` handler: its claim and its watermark.
CREATE TABLE {schema}.nextgen_objects (
    handler text NOT NULL,
    object_id text NOT NULL,
    owner text,
    lease_until_ms bigint NOT NULL DEFAULT 0,
    created bigint,
    event_id text,
    newest_until_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (handler, object_id)
);
CREATE INDEX nextgen_objects_until ON {schema}.nextgen_objects (newest_until_ms);

-- The inbox, one entry per event id, in two tables: what changes as the entry moves (small,
-- updated on every take and finish) and what never changes (the body, written once), so that
-- a state update copies a few dozen bytes, not the body.
CREATE TABLE {schema}.nextgen_inbox (
    event_id text PRIMARY KEY,
    event_type text NOT NULL,
    received_at_ms bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'running', 'handled', 'dead')),
    -- pending: when it is due; running: when its lease lapses.
    due_at_ms bigint NOT NULL,
    -- Where a taken entry stood in the queue.
    queued_due_ms bigint,
    owner text,
    attempts integer NOT NULL DEFAULT 0,
    first_failed_at_ms bigint,
    finished_at_ms bigint,
    last_errors text
) WITH (fillfactor = 90);
CREATE INDEX nextgen_inbox_due ON {schema}.nextgen_inbox (due_at_ms)
    WHERE state IN ('pending', 'running');
CREATE INDEX nextgen_inbox_received ON {schema}.nextgen_inbox (received_at_ms);
CREATE INDEX nextgen_inbox_handled ON {schema}.nextgen_inbox (finished_at_ms)
    WHERE state = 'handled';

CREATE TABLE {schema}.nextgen_inbox_bodies (
    event_id text PRIMARY KEY,
    body bytea NOT NULL,
    -- The `NextGen-Signature` header it was verified with, verified again before dispatch.
    signature text,
    signed_at bigint NOT NULL
);
