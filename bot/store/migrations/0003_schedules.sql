-- Version 3: time. Every pending reminder is a row (the scheduler is rebuilt
-- from them at start); unit work calendars; leave; who is responsible for a hazard.

CREATE TABLE reminders (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    due_at           TEXT NOT NULL,            -- UTC
    target           TEXT NOT NULL,            -- JSON: what the kind needs
    idempotency_key  TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL DEFAULT 'pending',  -- pending, done, dropped, cancelled
    late             INTEGER NOT NULL DEFAULT 0,
    fired_at         TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX reminders_due ON reminders(state, due_at);

CREATE TABLE unit_calendars (
    unit_id          INTEGER PRIMARY KEY REFERENCES units(id),
    shift_starts     TEXT NOT NULL,            -- 'HH:MM,HH:MM'
    every_day        INTEGER NOT NULL DEFAULT 0,
    nudge_minutes    INTEGER NOT NULL DEFAULT 30,
    digest_minutes   INTEGER NOT NULL DEFAULT 60,
    updated_at       TEXT NOT NULL
);

CREATE TABLE leave (
    staff_id    INTEGER PRIMARY KEY REFERENCES staff(id),
    until_date  TEXT NOT NULL,                 -- local date, inclusive
    set_at      TEXT NOT NULL
);

ALTER TABLE hazards ADD COLUMN responsible_id INTEGER REFERENCES staff(id);
