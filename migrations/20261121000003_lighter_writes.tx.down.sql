DROP INDEX IF EXISTS calls_ended_at_idx

--bun:split

CREATE INDEX IF NOT EXISTS calls_ended_at_idx ON calls (ended_at)

--bun:split

CREATE INDEX IF NOT EXISTS events_created_at_idx ON events (created_at)

--bun:split

CREATE INDEX IF NOT EXISTS calls_agent_id_idx ON calls (agent_id)
