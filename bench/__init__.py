"""The repository's benchmark: `make bench`, `make bench-quick`, `make bench-soak`.

It starts the stack as `make run` does (the Procfile's web, worker and beat commands)
against a fresh database and its own Redis database index, drives it with an asyncio HTTP
client, and reports every figure beside a baseline measured in the same run. See README.md
("Performance") for what it measures and how to read it.
"""
