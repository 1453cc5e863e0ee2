"""Time: the clock, recurring duties, reminders and digests."""
