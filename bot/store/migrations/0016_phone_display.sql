-- A phone as the roster or the client list wrote it ('021-63510001'), shown to
-- people; `phone` stays the E.164 form that sign-ups and searches match.
-- NULL (not kept, or a number from the WeCom directory): `phone` is shown
-- formatted (bot.phones.display).
ALTER TABLE staff ADD COLUMN phone_display TEXT;
ALTER TABLE clients ADD COLUMN phone_display TEXT;
