-- The sender serves addresses fairly: a reply to someone who just wrote goes
-- before their queued notices (priority 0 before 1), and notices of one kind
-- to one person that pile up go as one digest (kind: the catalog key).
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN kind TEXT;
CREATE INDEX outbox_waiting ON outbox(channel, address, priority, id) WHERE status = 'pending';
CREATE INDEX outbox_due_pending ON outbox(channel, priority, id) WHERE status = 'pending';
