-- Version 5: fire and evacuation drills (REGULATIONS §4).

CREATE TABLE drills (
    id             INTEGER PRIMARY KEY,
    unit_id        INTEGER NOT NULL REFERENCES units(id),   -- the area: this unit's subtree
    kind           TEXT NOT NULL,                           -- 'fire', 'evacuation', 'other'
    at             TEXT NOT NULL,                           -- UTC
    organiser_id   INTEGER NOT NULL REFERENCES staff(id),
    state          TEXT NOT NULL DEFAULT 'planned',         -- planned, done, cancelled
    participants   INTEGER,
    minutes        INTEGER,
    problems       TEXT,
    photo          TEXT,
    hazard_id      INTEGER REFERENCES hazards(id),
    created_at     TEXT NOT NULL,
    recorded_at    TEXT
);
CREATE INDEX drills_unit_at ON drills(unit_id, at);
