-- Chains a batch of entries of an operational stream (AuditChainer): each entry is
-- acknowledged in the chainer's consumer group and appended to the chain only if that
-- acknowledgement was new, so no entry is chained twice or skipped.
-- KEYS: 1 source stream, 2 chain log, 3 chain head
-- ARGV: 1 consumer group, then per entry: id, actor, action, study, details
--#include _audit
local chained = 0
for i = 2, #ARGV, 5 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    rg_audit_append(KEYS[2], KEYS[3], '', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
    chained = chained + 1
  end
end
return chained
