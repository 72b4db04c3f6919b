"""Demo downstream REST services serving the Chinook sample database (json-server 0.17 conventions)."""
