-- Version 19 (PostgreSQL): one row per number taken, not one updated row per
-- register and year. A report's transaction sees the database as it was when
-- it began; a counter row updated by a report committed since cannot be
-- updated again, so the later report had to be rerun whole. A number is now
-- an insert: the taker reads the last number outside its snapshot, holding the
-- counter's lock, and inserts the next (hazards.next_number). A row copied
-- from SQLite, (register, year, last), is the last number taken before.
ALTER TABLE register_counters DROP CONSTRAINT register_counters_pkey;
ALTER TABLE register_counters ADD PRIMARY KEY (register, year, last);
