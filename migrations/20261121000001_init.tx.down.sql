-- Drops the initial schema, children before parents.

DROP TABLE IF EXISTS events

--bun:split

DROP TABLE IF EXISTS transfers

--bun:split

DROP TABLE IF EXISTS legs

--bun:split

DROP TABLE IF EXISTS calls

--bun:split

DROP TABLE IF EXISTS agents

--bun:split

DROP TABLE IF EXISTS webhook_receipts
