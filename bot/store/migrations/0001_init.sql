-- Frontline schema, version 1: organisation, people, conversations, outbox,
-- checklist runs, hazards and the audit log. Timestamps are ISO-8601 UTC text.

CREATE TABLE units (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES units(id),
    name        TEXT NOT NULL,
    path        TEXT NOT NULL UNIQUE,          -- '物业服务中心/保安部/一班'
    timezone    TEXT,                          -- NULL: inherited from the parent
    created_at  TEXT NOT NULL
);
CREATE INDEX units_parent ON units(parent_id);

CREATE TABLE staff (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    phone        TEXT NOT NULL UNIQUE,         -- normalised, '+8613800000000'
    employee_no  TEXT UNIQUE,
    unit_id      INTEGER NOT NULL REFERENCES units(id),
    roles        TEXT NOT NULL,                -- comma-separated Role values
    language     TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX staff_unit ON staff(unit_id);

CREATE TABLE channel_identities (
    channel      TEXT NOT NULL,                -- 'telegram', 'wecom', 'console'
    user_id      TEXT NOT NULL,                -- the channel's id for the person
    staff_id     INTEGER NOT NULL REFERENCES staff(id),
    reachable    INTEGER NOT NULL DEFAULT 1,
    last_seen_at TEXT,
    PRIMARY KEY (channel, user_id)
);
CREATE INDEX identities_staff ON channel_identities(staff_id);

CREATE TABLE processed_events (
    channel      TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
);

CREATE TABLE conversations (
    staff_id    INTEGER PRIMARY KEY REFERENCES staff(id),
    flow        TEXT NOT NULL,
    step        TEXT NOT NULL,
    data        TEXT NOT NULL,                 -- JSON
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY,
    staff_id            INTEGER REFERENCES staff(id),
    channel             TEXT,                  -- NULL: no reachable channel yet
    address             TEXT,                  -- the channel's chat / user id
    text                TEXT NOT NULL,
    buttons             TEXT,                  -- JSON rows of [label, action]
    attachments         TEXT,                  -- JSON list of media paths
    idempotency_key     TEXT NOT NULL UNIQUE,
    replaces_id         INTEGER REFERENCES outbox(id),
    status              TEXT NOT NULL DEFAULT 'pending',  -- pending, sending, sent, failed
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    last_error          TEXT,
    channel_message_id  TEXT,
    created_at          TEXT NOT NULL,
    sent_at             TEXT
);
CREATE INDEX outbox_due ON outbox(status, channel, next_attempt_at);
CREATE INDEX outbox_staff ON outbox(staff_id, status);
CREATE INDEX outbox_address ON outbox(channel, address, status, id);

CREATE TABLE checklist_runs (
    id            INTEGER PRIMARY KEY,
    checklist     TEXT NOT NULL,               -- checklist id, e.g. 'preshift'
    staff_id      INTEGER NOT NULL REFERENCES staff(id),
    unit_id       INTEGER NOT NULL REFERENCES units(id),
    local_date    TEXT NOT NULL,               -- the unit's local date, YYYY-MM-DD
    redo_of       INTEGER REFERENCES checklist_runs(id),
    started_at    TEXT NOT NULL,
    completed_at  TEXT,
    cancelled_at  TEXT
);
CREATE INDEX runs_staff_day ON checklist_runs(staff_id, checklist, local_date);

CREATE TABLE checklist_answers (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES checklist_runs(id),
    item        TEXT NOT NULL,
    answer      TEXT NOT NULL,                 -- 'ok', 'problem', 'na'
    note        TEXT,
    hazard_id   INTEGER REFERENCES hazards(id),
    answered_at TEXT NOT NULL,
    UNIQUE (run_id, item)
);

CREATE TABLE hazards (
    id           INTEGER PRIMARY KEY,
    unit_id      INTEGER NOT NULL REFERENCES units(id),
    reported_by  INTEGER NOT NULL REFERENCES staff(id),
    source       TEXT NOT NULL,                -- 'checklist:preshift:equipment', ...
    description  TEXT NOT NULL,
    photo        TEXT,                         -- media path
    severity     TEXT NOT NULL,                -- 'general', 'major'
    status       TEXT NOT NULL,                -- 'open', ...
    deadline_at  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX hazards_unit_status ON hazards(unit_id, status);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    INTEGER REFERENCES staff(id),  -- NULL: the system or an admin CLI
    entity      TEXT NOT NULL,                 -- 'hazard', 'checklist_run', 'staff', ...
    entity_id   INTEGER NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT                           -- JSON
);
CREATE INDEX audit_entity ON audit_log(entity, entity_id);
