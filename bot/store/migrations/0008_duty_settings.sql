-- Version 8: per-unit duty settings: another cadence, or another owner.

CREATE TABLE duty_settings (
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    duty        TEXT NOT NULL,
    cadence     TEXT,                          -- NULL: the data file's
    owner_id    INTEGER REFERENCES staff(id),  -- NULL: the data file's owner role
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (unit_id, duty)
);
