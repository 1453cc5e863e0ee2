-- Version 13: what /visits and /followup read, kept fast on a million visits.
-- visits_unit is widened so that a unit's week (counts, exceptions, visits
-- done and not yet followed up) is read from the index alone; a planned
-- visit's check-in, the week's unusual reports and the planned visits still
-- waiting for a check-in are found without scanning their tables.

DROP INDEX visits_unit;
CREATE INDEX visits_unit ON visits(unit_id, checkin_at, state, checkin_exception, checkout_exception);
CREATE INDEX visits_request ON visits(request_id) WHERE request_id IS NOT NULL;
CREATE INDEX visit_notes_unusual ON visit_notes(at) WHERE kind = 'unusual';
CREATE INDEX visit_requests_accepted ON visit_requests(starts_at) WHERE state = 'accepted';
