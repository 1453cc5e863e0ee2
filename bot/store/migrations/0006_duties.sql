-- Version 6: recurring duties. One occurrence per duty, owner and period;
-- done when the owner does it, escalated when the deadline passes.

CREATE TABLE duty_occurrences (
    id            INTEGER PRIMARY KEY,
    duty          TEXT NOT NULL,
    staff_id      INTEGER NOT NULL REFERENCES staff(id),
    period        TEXT NOT NULL,               -- '2026-11-27', '2026-11', '2026-Q4', '2026'
    starts_at     TEXT NOT NULL,               -- UTC: the reminder
    due_at        TEXT NOT NULL,               -- UTC: the deadline
    done_at       TEXT,
    escalated_at  TEXT,
    UNIQUE (duty, staff_id, period)
);
CREATE INDEX duty_occurrences_open ON duty_occurrences(staff_id, duty, done_at);

CREATE TABLE duty_pauses (
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    duty        TEXT NOT NULL,
    paused_by   INTEGER NOT NULL REFERENCES staff(id),
    paused_at   TEXT NOT NULL,
    PRIMARY KEY (unit_id, duty)
);
