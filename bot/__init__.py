"""Frontline's core: configuration, the domain model, the store, the engine,
the channels, the sender and the command line."""
