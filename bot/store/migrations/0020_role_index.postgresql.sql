-- Version 20 (PostgreSQL): the holders of a role (the supervisors up a unit's
-- tree, the safety officers a report goes to) by an index on the roles as an
-- array, not a scan of every member of staff (3 ms at 10,000 people, twice in
-- every report). dialect.has_role asks `string_to_array(roles, ',') @> ARRAY[role]`.
-- fastupdate off: staff rows change seldom, and a pending list (a roster import's
-- rows, until the next vacuum) would be read through on every look-up.
CREATE INDEX staff_roles ON staff USING gin (string_to_array(roles, ',')) WITH (fastupdate = off);
