// Test helpers: a private redis-server per test, corpus lookup.
