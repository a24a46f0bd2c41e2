-- Appends one audit entry.
-- KEYS: 1 log stream, 2 head, 3 study index ('' when no study)
-- ARGV: 1 actor, 2 action, 3 study, 4 details
--#include _audit
return rg_audit_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
