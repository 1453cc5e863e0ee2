-- Version 7: the training register (REGULATIONS §4: fire-safety training at
-- least once a year, and before a new employee's first shift).

CREATE TABLE trainings (
    id           INTEGER PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff(id),
    kind         TEXT NOT NULL,                -- 'fire'
    held_on      TEXT NOT NULL,                -- local date
    recorded_by  INTEGER NOT NULL REFERENCES staff(id),
    recorded_at  TEXT NOT NULL
);
CREATE INDEX trainings_staff ON trainings(staff_id, kind, held_on);
