-- The handlers an operator ran again on purpose (`InboxOperator::rerun`), kept with the entry:
-- a JSON array of `{"handler", "at_ms"}`, NULL while there are none (every entry before it).
-- `{schema}` is the schema's quoted name. A nullable column without a default: added without
-- rewriting the table.
ALTER TABLE {schema}.nextgen_inbox ADD COLUMN reruns text;
