-- Version 12: elder-care home visits (REGULATIONS §5). Clients and their care
-- plans, planned visits (a resident's request, or a regular visit of the care
-- plan), the visits themselves with the six elements visit verification needs
-- (service, person served, worker, date, location, start and end), what was
-- observed, anything unusual, and the follow-up with the family.

CREATE TABLE clients (
    id                 INTEGER PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,            -- the centre's client number
    name               TEXT NOT NULL,
    address            TEXT NOT NULL,
    lat                REAL,
    lon                REAL,
    phone              TEXT,
    emergency_contact  TEXT,
    unit_id            INTEGER NOT NULL REFERENCES units(id),  -- the service centre
    services           TEXT NOT NULL,                   -- JSON list of service keys (the care plan)
    visit_times        TEXT,                            -- regular visits, '周一 09:00，周四 14:30'
    active             INTEGER NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX clients_unit ON clients(unit_id);

CREATE TABLE client_workers (
    client_id  INTEGER NOT NULL REFERENCES clients(id),
    staff_id   INTEGER NOT NULL REFERENCES staff(id),
    PRIMARY KEY (client_id, staff_id)
);
CREATE INDEX client_workers_staff ON client_workers(staff_id);

-- A planned visit: a resident's request assigned to a worker, or a regular
-- visit of the care plan.
CREATE TABLE visit_requests (
    id            INTEGER PRIMARY KEY,
    client_id     INTEGER NOT NULL REFERENCES clients(id),
    origin        TEXT NOT NULL,                        -- 'request', 'regular'
    services      TEXT NOT NULL,                        -- JSON list of service keys
    starts_at     TEXT NOT NULL,                        -- UTC
    ends_at       TEXT NOT NULL,
    worker_id     INTEGER REFERENCES staff(id),
    state         TEXT NOT NULL,    -- 'assigned' (the worker has not answered), 'accepted', 'declined', 'visited', 'cancelled'
    requested_by  INTEGER REFERENCES staff(id),
    note          TEXT,                                 -- why it was declined
    created_at    TEXT NOT NULL,
    decided_at    TEXT,
    UNIQUE (client_id, worker_id, starts_at)
);
CREATE INDEX visit_requests_worker ON visit_requests(worker_id, starts_at);
CREATE INDEX visit_requests_client ON visit_requests(client_id, starts_at);
CREATE INDEX visit_requests_starts ON visit_requests(starts_at);

CREATE TABLE visits (
    id                   INTEGER PRIMARY KEY,
    client_id            INTEGER NOT NULL REFERENCES clients(id),
    worker_id            INTEGER NOT NULL REFERENCES staff(id),
    unit_id              INTEGER NOT NULL REFERENCES units(id),  -- the client's centre, for supervisors
    request_id           INTEGER REFERENCES visit_requests(id),
    state                TEXT NOT NULL,                 -- 'open', 'done'
    checkin_at           TEXT NOT NULL,
    checkin_lat          REAL,
    checkin_lon          REAL,
    checkin_distance_m   REAL,                          -- from the client's coordinates
    checkin_exception    TEXT,                          -- NULL, 'far', 'no_location'
    checkin_reason       TEXT,                          -- 'client_elsewhere', 'gps_poor', 'no_phone', 'other'
    checkin_note         TEXT,
    checkout_at          TEXT,
    checkout_lat         REAL,
    checkout_lon         REAL,
    checkout_distance_m  REAL,
    checkout_exception   TEXT,
    checkout_reason      TEXT,
    checkout_note        TEXT,
    services             TEXT NOT NULL DEFAULT '[]',    -- JSON list of service keys done
    no_gifts             INTEGER,                       -- 1: confirmed at check-out
    created_at           TEXT NOT NULL
);
CREATE INDEX visits_worker ON visits(worker_id, checkin_at);
CREATE INDEX visits_unit ON visits(unit_id, checkin_at);
CREATE INDEX visits_client ON visits(client_id, checkin_at);
CREATE UNIQUE INDEX visits_one_open ON visits(worker_id) WHERE state = 'open';

-- Observations and anything unusual, during a visit.
CREATE TABLE visit_notes (
    id            INTEGER PRIMARY KEY,
    visit_id      INTEGER NOT NULL REFERENCES visits(id),
    kind          TEXT NOT NULL,                        -- 'observation', 'unusual'
    unusual_kind  TEXT,                                 -- 'fall', 'illness', 'not_home', 'unsafe_home', 'neglect', 'other'
    text          TEXT,
    photo         TEXT,
    readings      TEXT,                                 -- JSON: {"systolic": 130, "diastolic": 85, ...}
    hazard_id     INTEGER REFERENCES hazards(id),
    at            TEXT NOT NULL
);
CREATE INDEX visit_notes_visit ON visit_notes(visit_id);

CREATE TABLE visit_followups (
    id            INTEGER PRIMARY KEY,
    visit_id      INTEGER NOT NULL REFERENCES visits(id),
    by_id         INTEGER NOT NULL REFERENCES staff(id),
    satisfaction  INTEGER NOT NULL,                     -- 1..5
    comments      TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX visit_followups_visit ON visit_followups(visit_id);

-- How far from the client's coordinates a check-in may be (metres), per unit,
-- inherited by sub-units, 200 where none is set.
CREATE TABLE visit_settings (
    unit_id      INTEGER PRIMARY KEY REFERENCES units(id),
    tolerance_m  INTEGER NOT NULL
);
