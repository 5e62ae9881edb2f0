-- Every webhook writes: a new caller inserts a call and an event, and each
-- callback appends events. Indexes no query uses only make those writes
-- dearer.
--
-- No query looks calls up by the agent who owns them (an agent's call is
-- found through their leg), and agents are disabled, never deleted.

DROP INDEX IF EXISTS calls_agent_id_idx

--bun:split

-- Events are read by id (replay) and by call (timelines), never by time.

DROP INDEX IF EXISTS events_created_at_idx

--bun:split

-- The board reads the calls that ended since midnight; a call still going
-- has no end, so it need not be in the index at all.

DROP INDEX IF EXISTS calls_ended_at_idx

--bun:split

CREATE INDEX IF NOT EXISTS calls_ended_at_idx ON calls (ended_at) WHERE ended_at IS NOT NULL
