-- Version 4: notices with read receipts (REGULATIONS §6).

CREATE TABLE notices (
    id            INTEGER PRIMARY KEY,
    sender_id     INTEGER NOT NULL REFERENCES staff(id),
    text          TEXT NOT NULL,
    attachment    TEXT,                        -- media path
    audience      TEXT NOT NULL,               -- JSON: how the recipients were chosen
    confidential  INTEGER NOT NULL DEFAULT 0,  -- named people only
    created_at    TEXT NOT NULL
);

CREATE TABLE notice_recipients (
    notice_id  INTEGER NOT NULL REFERENCES notices(id),
    staff_id   INTEGER NOT NULL REFERENCES staff(id),
    read_at    TEXT,
    PRIMARY KEY (notice_id, staff_id)
);
CREATE INDEX notice_recipients_staff ON notice_recipients(staff_id, read_at);
