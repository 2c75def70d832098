# node/: the daemon (config, SQLite store, HTTP API, glue).
