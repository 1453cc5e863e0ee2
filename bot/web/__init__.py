"""The desk: server-rendered pages for supervisors, safety officers and
admins, signed in from the chat, reading on their own connections beside the
writer and judging who sees what by the chat's own rules. It never imports
`handlers`."""
