CREATE INDEX IF NOT EXISTS calls_state_idx ON calls (state)

--bun:split

DROP INDEX IF EXISTS calls_state_created_at_id_idx
