-- Version 21 (PostgreSQL): the unit tree's version. Each process keeps a copy of
-- the tree (bot/store/people.py's UnitTree), and each transaction reads this
-- version in its first round trip (bot/store/postgres.py): the copy answers a
-- unit's chain, its subtree and its path while its version is the one the
-- transaction sees, instead of a round trip each. The count is changed in the
-- transaction that changes the units, by the trigger below, so a version is
-- never seen before the tree it counts. No row yet: version 0, the tree as it
-- stood before this migration.
CREATE TABLE unit_tree_version (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    n   BIGINT NOT NULL
);

CREATE FUNCTION frontline_unit_tree_changed() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN
    INSERT INTO unit_tree_version (one, n) VALUES (TRUE, 1)
        ON CONFLICT (one) DO UPDATE SET n = unit_tree_version.n + 1;
    RETURN NULL;
END';

CREATE TRIGGER units_tree_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION frontline_unit_tree_changed();
