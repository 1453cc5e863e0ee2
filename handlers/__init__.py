"""The conversations, one module per flow; `handlers.router` wires them into
the engine. Importing this package imports no flow, so a flow's data (the
checklist files) can be read without pulling in every conversation."""
