-- The initial schema: a text/template whose two dialect-specific column types
-- come from migrations.Data (see migrations.go); the rest is portable SQL.
-- Timestamps are written by the application (bun formats them in UTC), never
-- by column defaults, so both engines hold the same values.

CREATE TABLE IF NOT EXISTS agents (
    id {{.PrimaryKey}},
    identity TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT 'agent'
        CHECK (role IN ('agent', 'manager')),
    password_hash TEXT NOT NULL DEFAULT '',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    presence TEXT NOT NULL DEFAULT 'offline'
        CHECK (presence IN ('offline', 'available', 'busy', 'away', 'wrap_up')),
    presence_since {{.Timestamp}} NOT NULL,
    -- NULL until the agent's first call ends; routing treats NULL as idle longest.
    last_call_ended_at {{.Timestamp}},
    missed_offers INTEGER NOT NULL DEFAULT 0,
    -- Bumped to invalidate every session cookie issued before.
    session_epoch BIGINT NOT NULL DEFAULT 0,
    created_at {{.Timestamp}} NOT NULL,
    updated_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE TABLE IF NOT EXISTS calls (
    id {{.PrimaryKey}},
    -- The customer's CallSid.
    call_sid TEXT NOT NULL UNIQUE,
    -- Named after the call, never after a phone number.
    conference_name TEXT NOT NULL UNIQUE,
    -- Known once Twilio reports the conference.
    conference_sid TEXT UNIQUE,
    from_number TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    to_number TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'ringing', 'with_agent', 'transferring', 'ended')),
    -- The agent who owns the call now.
    agent_id BIGINT REFERENCES agents (id),
    -- The last conference SequenceNumber applied: older callbacks are stale.
    conference_seq BIGINT NOT NULL DEFAULT 0,
    -- The customer is on hold while no agent is with them (hearing music).
    customer_on_hold BOOLEAN NOT NULL DEFAULT FALSE,
    created_at {{.Timestamp}} NOT NULL,
    answered_at {{.Timestamp}},
    ended_at {{.Timestamp}},
    end_reason TEXT NOT NULL DEFAULT '',
    ended_by TEXT NOT NULL DEFAULT '',
    updated_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE INDEX IF NOT EXISTS calls_state_idx ON calls (state)

--bun:split

CREATE INDEX IF NOT EXISTS calls_agent_id_idx ON calls (agent_id)

--bun:split

CREATE INDEX IF NOT EXISTS calls_ended_at_idx ON calls (ended_at)

--bun:split

CREATE TABLE IF NOT EXISTS legs (
    id {{.PrimaryKey}},
    call_id BIGINT NOT NULL REFERENCES calls (id),
    agent_id BIGINT REFERENCES agents (id),
    -- The agent's call into the conference.
    call_sid TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL
        CHECK (role IN ('primary', 'colleague', 'monitor')),
    state TEXT NOT NULL DEFAULT 'ringing'
        CHECK (state IN ('ringing', 'joined', 'left', 'no_answer', 'declined', 'failed', 'canceled')),
    hold BOOLEAN NOT NULL DEFAULT FALSE,
    muted BOOLEAN NOT NULL DEFAULT FALSE,
    end_conference_on_exit BOOLEAN NOT NULL DEFAULT FALSE,
    created_at {{.Timestamp}} NOT NULL,
    joined_at {{.Timestamp}},
    left_at {{.Timestamp}},
    updated_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE INDEX IF NOT EXISTS legs_call_id_idx ON legs (call_id)

--bun:split

CREATE INDEX IF NOT EXISTS legs_agent_id_state_idx ON legs (agent_id, state)

--bun:split

CREATE TABLE IF NOT EXISTS transfers (
    id {{.PrimaryKey}},
    call_id BIGINT NOT NULL REFERENCES calls (id),
    from_agent_id BIGINT NOT NULL REFERENCES agents (id),
    to_agent_id BIGINT NOT NULL REFERENCES agents (id),
    -- The colleague's leg, once it has been dialed.
    to_leg_id BIGINT REFERENCES legs (id),
    mode TEXT NOT NULL
        CHECK (mode IN ('direct', 'consult', 'blind')),
    state TEXT NOT NULL DEFAULT 'ringing'
        CHECK (state IN ('ringing', 'joined', 'completed', 'canceled', 'declined', 'no_answer', 'failed')),
    created_at {{.Timestamp}} NOT NULL,
    ended_at {{.Timestamp}},
    updated_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE INDEX IF NOT EXISTS transfers_call_id_idx ON transfers (call_id)

--bun:split

-- Append-only. The id is the SSE event id and the LISTEN/NOTIFY payload.
CREATE TABLE IF NOT EXISTS events (
    id {{.PrimaryKey}},
    call_id BIGINT REFERENCES calls (id),
    -- The agent the event concerns, if any.
    agent_id BIGINT REFERENCES agents (id),
    kind TEXT NOT NULL,
    -- JSON.
    payload TEXT NOT NULL DEFAULT '',
    created_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE INDEX IF NOT EXISTS events_call_id_idx ON events (call_id)

--bun:split

CREATE INDEX IF NOT EXISTS events_created_at_idx ON events (created_at)

--bun:split

-- One row per webhook delivery already handled, e.g. "conf:<ConferenceSid>:<SequenceNumber>",
-- so a retried webhook is dropped exactly once.
CREATE TABLE IF NOT EXISTS webhook_receipts (
    "key" TEXT NOT NULL PRIMARY KEY,
    created_at {{.Timestamp}} NOT NULL
)

--bun:split

CREATE INDEX IF NOT EXISTS webhook_receipts_created_at_idx ON webhook_receipts (created_at)
