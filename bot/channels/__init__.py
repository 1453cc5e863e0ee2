"""Channel adapters: each turns its platform's events into Inbound and
delivers Outbound rows for the sender. No channel imports a handler."""
