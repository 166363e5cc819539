"""Identity: accounts, credentials, sessions, preferences, audit."""
