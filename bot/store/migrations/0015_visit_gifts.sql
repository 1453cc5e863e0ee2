-- Version 21: a gift pressed on a worker during a home visit is declared at
-- check-out (REGULATIONS §5: no gifts): declined, or taken and handed in to
-- the centre, with what happened. Visits checked out before this version
-- confirmed that no gift was accepted.
ALTER TABLE visits ADD COLUMN gifts TEXT;       -- NULL while open, then 'none', 'declined' or 'handed_in'
ALTER TABLE visits ADD COLUMN gifts_note TEXT;  -- the worker's account of a declared gift
UPDATE visits SET gifts = 'none' WHERE no_gifts = 1;
