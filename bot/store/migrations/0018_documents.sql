-- Documents built off the writer. A message that carries a file to be made
-- (an /export, an order's or an incident's PDF) is queued as status
-- 'preparing' with `document` (JSON: the request: kind, its parameters, the
-- language, the scope decided when it was asked for); the documents worker
-- (bot/preparer.py) builds the file on a read connection and makes the row
-- 'pending'. The status column has no CHECK (0001), so no table rebuild is
-- needed for the new value. A person's later rows wait behind their
-- 'preparing' row; the index keeps that look-up off the sender's hot path
-- (it holds only the few rows being prepared).
ALTER TABLE outbox ADD COLUMN document TEXT;
CREATE INDEX outbox_preparing ON outbox(channel, address, id) WHERE status = 'preparing';
