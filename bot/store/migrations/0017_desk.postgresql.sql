-- Version 30, PostgreSQL's variant: the desk (bot/web/). One-time sign-in links that /web sends and
-- the browser sessions they start, both kept only as SHA-256 hashes of their
-- secrets.

CREATE TABLE desk_links (
    token_hash  TEXT PRIMARY KEY,              -- sha256 hex of the link's token
    staff_id    INTEGER NOT NULL REFERENCES staff(id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,                 -- ten minutes after created_at
    used_at     TEXT                           -- NULL: not opened yet
);
CREATE INDEX desk_links_expires ON desk_links(expires_at);

CREATE TABLE desk_sessions (
    id_hash       TEXT PRIMARY KEY,            -- sha256 hex of the cookie's session id
    staff_id      INTEGER NOT NULL REFERENCES staff(id),
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,               -- idle for 12 hours: the session is over
    language      TEXT                         -- chosen on the desk; NULL: the person's own
);
CREATE INDEX desk_sessions_staff ON desk_sessions(staff_id);
CREATE INDEX desk_sessions_seen ON desk_sessions(last_seen_at);

-- The register's search over description and place: Chinese has no spaces,
-- so words are found by their three-character pieces: on PostgreSQL pg_trgm's
-- GIN indexes, which serve ILIKE '%term%' (the SQLite file uses FTS5's trigram
-- tokenizer instead; bot/store/dialect.py writes the two searches).
CREATE INDEX hazards_description_trgm ON hazards USING gin (description gin_trgm_ops);
CREATE INDEX hazards_place_trgm ON hazards USING gin (place gin_trgm_ops);

-- Today's numbers for every unit at once: who completed the pre-shift check
-- on a local date, the open hazards by state, unit, severity and deadline,
-- and each unit's active people, each read from its index alone.
CREATE INDEX runs_completed_day ON checklist_runs(checklist, local_date, unit_id, staff_id)
    WHERE completed_at IS NOT NULL;
CREATE INDEX hazards_status_unit ON hazards(status, unit_id, severity, deadline_at);
CREATE INDEX staff_unit_active ON staff(unit_id, active);
