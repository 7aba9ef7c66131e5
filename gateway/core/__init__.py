"""The pure core: the provider's rules as functions of values (no I/O, no clock, no asyncio)."""
