-- Raised by a transactional handler's claim when the claim is not this delivery's, so that
-- the query that carries it (`EXECUTE <claim>; BEGIN`, see postgres/store/transaction.rs)
-- fails and no transaction begins. The SQLSTATE says why: NX001 the handler already handled
-- the event, NX002 another delivery holds the claim. `{schema}` is the schema's quoted name.
CREATE FUNCTION {schema}.nextgen_not_claimed(state text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF state = 'done' THEN
        RAISE EXCEPTION 'nextgen: the handler already handled this event' USING ERRCODE = 'NX001';
    END IF;
    RAISE EXCEPTION 'nextgen: another delivery holds this handler''s claim' USING ERRCODE = 'NX002';
END
$$;
