-- What the inbox's operator view reads cheaply on a large inbox: pages of the list after a
-- cursor, dead letters among many handled entries, and the per-hour history. `{schema}` is the
-- schema's quoted name.

-- The list's order: newest first, then by event id in byte order (`COLLATE "C"`, whatever the
-- database's collation), the order `ListCursor` compares in. It replaces the index on the
-- receipt time alone, whose reads (a replay of dead letters since a time) it serves as well.
CREATE INDEX nextgen_inbox_listed ON {schema}.nextgen_inbox (received_at_ms, event_id COLLATE "C");
DROP INDEX {schema}.nextgen_inbox_received;

-- Dead letters in the list's order, with their finish time: a page of them after a cursor, their
-- count and the history's dead hours read only dead letters. Entries in other states leave no
-- entry here when they change.
CREATE INDEX nextgen_inbox_dead ON {schema}.nextgen_inbox (received_at_ms, event_id COLLATE "C")
    INCLUDE (finished_at_ms) WHERE state = 'dead';

-- Entries that failed, by their first failure: the history's retried hours.
CREATE INDEX nextgen_inbox_failed ON {schema}.nextgen_inbox (first_failed_at_ms)
    WHERE first_failed_at_ms IS NOT NULL;
