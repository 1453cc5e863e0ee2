-- Version 22: a hazard's pending reminders by their keys (reminders.cancel:
-- state = 'pending' and a range of idempotency_key). With only reminders_due
-- (state, due_at) and the key's own index, both engines read every pending
-- reminder to find a hazard's three: SQLite searches reminders_due by state,
-- PostgreSQL ANDs both indexes (about 0.6 ms a report at 4,500 pending, a
-- fifth of the server's time per report in bench/pipeline.py). Every report
-- cancels before it plans.
CREATE INDEX reminders_pending_key ON reminders(state, idempotency_key);
