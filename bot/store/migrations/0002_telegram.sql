-- Version 2: one-time invite links, unit alert groups, and what each channel
-- identity's command menu was last set to.

CREATE TABLE invites (
    code        TEXT PRIMARY KEY,
    staff_id    INTEGER NOT NULL REFERENCES staff(id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    used_by     TEXT                           -- 'channel:user_id' that redeemed it
);

CREATE TABLE alert_groups (
    channel     TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    bound_by    INTEGER NOT NULL REFERENCES staff(id),
    bound_at    TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
CREATE INDEX alert_groups_unit ON alert_groups(unit_id);

ALTER TABLE channel_identities ADD COLUMN menu TEXT;

CREATE INDEX outbox_delivered ON outbox(channel, address, channel_message_id);

-- A channel's own id for a file we stored (Telegram's file_id), so it can be
-- sent again without uploading it.
CREATE TABLE media_refs (
    channel     TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    path        TEXT NOT NULL,                 -- relative to the media folder
    created_at  TEXT NOT NULL,
    PRIMARY KEY (channel, file_id)
);
CREATE INDEX media_refs_path ON media_refs(path);
