-- Version 23 (PostgreSQL): the register's search indexes (0017's trigram GIN
-- indexes on a hazard's description and place) without a pending list. With
-- GIN's default fast update a new hazard waits in a list that every search
-- reads through, until the list grows past 4 MB and the report that crosses
-- the line merges it into the index (bench/registers.py at full size: a new
-- report's p95 10.9 ms, 8.2 ms without; p50 7.6 ms both). Hazards are filed a
-- few at a time, so each is indexed as it is filed, as staff_roles is (0020).
-- The list already there is merged now.
ALTER INDEX hazards_description_trgm SET (fastupdate = off);
ALTER INDEX hazards_place_trgm SET (fastupdate = off);
SELECT gin_clean_pending_list('hazards_description_trgm');
SELECT gin_clean_pending_list('hazards_place_trgm');
