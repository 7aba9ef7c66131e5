"""Storage: tables, engine, migrations and the queries of the gateway."""
