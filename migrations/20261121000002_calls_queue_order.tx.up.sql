-- Waiting calls in the order they are offered (oldest first): the routing
-- query takes the first one and the wait music counts the ones ahead of a
-- caller, both from this index alone instead of sorting or reading every
-- waiting call's row. It starts with state, so it also serves what
-- calls_state_idx served.

CREATE INDEX IF NOT EXISTS calls_state_created_at_id_idx ON calls (state, created_at, id)

--bun:split

DROP INDEX IF EXISTS calls_state_idx
