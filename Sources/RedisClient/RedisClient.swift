// Redis client over hiredis.
