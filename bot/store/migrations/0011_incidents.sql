-- Version 11: the incident register (事故台账, REGULATIONS §3). An incident
-- (SG-2026-001) as reported, its investigation entries (appended, the latest
-- is the current state), its corrective actions (each one a hazard), and the
-- 15-day report to the labour authority. Every change is also in audit_log.

CREATE TABLE incidents (
    id                   INTEGER PRIMARY KEY,
    number               TEXT NOT NULL UNIQUE,          -- 'SG-2026-001'
    unit_id              INTEGER NOT NULL REFERENCES units(id),
    reported_by          INTEGER NOT NULL REFERENCES staff(id),
    occurred_at          TEXT NOT NULL,                 -- UTC
    place                TEXT NOT NULL,
    kind                 TEXT NOT NULL,                 -- 'near_miss', 'injury', ...
    description          TEXT NOT NULL,
    hurt_count           INTEGER NOT NULL,
    hurt_names           TEXT,
    first_actions        TEXT,
    photos               TEXT,                          -- JSON list of media paths
    investigation        TEXT NOT NULL DEFAULT 'reported',  -- reported, investigating, concluded
    report_due_at        TEXT NOT NULL,                 -- UTC, the 15-day deadline
    report_reference     TEXT,
    report_submitted_at  TEXT,
    report_submitted_by  INTEGER REFERENCES staff(id),
    created_at           TEXT NOT NULL
);
CREATE INDEX incidents_unit ON incidents(unit_id, id);
CREATE INDEX incidents_reported_by ON incidents(reported_by, id);

CREATE TABLE incident_investigations (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    status       TEXT NOT NULL,                         -- investigating, concluded
    responsible  TEXT,                                  -- the people responsible, as written
    findings     TEXT NOT NULL,
    recorded_by  INTEGER NOT NULL REFERENCES staff(id),
    recorded_at  TEXT NOT NULL
);
CREATE INDEX incident_investigations_incident ON incident_investigations(incident_id, id);

CREATE TABLE incident_actions (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    description  TEXT NOT NULL,
    hazard_id    INTEGER NOT NULL REFERENCES hazards(id),
    added_by     INTEGER NOT NULL REFERENCES staff(id),
    added_at     TEXT NOT NULL
);
CREATE INDEX incident_actions_incident ON incident_actions(incident_id, id);
