-- Version 19 (PostgreSQL): one row per number taken, not one updated row per
-- register and year. A report's transaction sees the database as it was when
-- it began, and a counter row updated by a report committed since cannot be
-- updated again: the later report had to be rerun whole, holding the counter.
-- A number is now inserted (MAX + 1) outside the report's transaction and
-- committed at once (hazards.next_number). A row copied from SQLite,
-- (register, year, last), is the last number taken before.
ALTER TABLE register_counters DROP CONSTRAINT register_counters_pkey;
ALTER TABLE register_counters ADD PRIMARY KEY (register, year, last);
