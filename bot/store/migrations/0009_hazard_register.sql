-- Version 9: the hazard register's numbers (YH-2026-0001) and the fields the
-- closed loop fills in (category, place, the four fixes).

CREATE TABLE register_counters (
    register  TEXT NOT NULL,                   -- 'YH' hazards, 'SG' incidents
    year      INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    PRIMARY KEY (register, year)
);

ALTER TABLE hazards ADD COLUMN number TEXT;
ALTER TABLE hazards ADD COLUMN category TEXT NOT NULL DEFAULT 'other';
ALTER TABLE hazards ADD COLUMN place TEXT;
ALTER TABLE hazards ADD COLUMN lat REAL;
ALTER TABLE hazards ADD COLUMN lon REAL;
ALTER TABLE hazards ADD COLUMN measure TEXT;
ALTER TABLE hazards ADD COLUMN funding TEXT;   -- decimal CNY as text, '0' for none needed
CREATE UNIQUE INDEX hazards_number ON hazards(number);
