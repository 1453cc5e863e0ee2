-- Version 10: the hazard closed loop. What the reporter added (photos, a
-- repeat's link), what the responsible person did or proposes (rectification,
-- interim measures, a new deadline), acceptance, and rectification orders
-- (整改通知书). Every state change is also in audit_log.

ALTER TABLE hazards ADD COLUMN photos TEXT;            -- JSON list of media paths
ALTER TABLE hazards ADD COLUMN repeat_of INTEGER REFERENCES hazards(id);
ALTER TABLE hazards ADD COLUMN failed_rectification INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hazards ADD COLUMN assigned_by INTEGER REFERENCES staff(id);
ALTER TABLE hazards ADD COLUMN rectification TEXT;     -- what was done
ALTER TABLE hazards ADD COLUMN rectification_photos TEXT;  -- JSON list of media paths
ALTER TABLE hazards ADD COLUMN interim_measures TEXT;
ALTER TABLE hazards ADD COLUMN proposed_deadline_at TEXT;
ALTER TABLE hazards ADD COLUMN accepted_by INTEGER REFERENCES staff(id);
ALTER TABLE hazards ADD COLUMN closed_at TEXT;

CREATE INDEX hazards_reported_by ON hazards(reported_by);
CREATE INDEX hazards_responsible ON hazards(responsible_id);
CREATE INDEX hazards_status_deadline ON hazards(status, deadline_at);
CREATE INDEX hazards_unit_category ON hazards(unit_id, category);

CREATE TABLE rectification_orders (
    id           INTEGER PRIMARY KEY,
    number       TEXT NOT NULL UNIQUE,             -- 'ZG-2026-001'
    hazard_id    INTEGER NOT NULL REFERENCES hazards(id),
    issued_by    INTEGER NOT NULL REFERENCES staff(id),
    issued_at    TEXT NOT NULL,
    deadline_at  TEXT NOT NULL,
    requirement  TEXT NOT NULL
);
CREATE INDEX orders_hazard ON rectification_orders(hazard_id);
