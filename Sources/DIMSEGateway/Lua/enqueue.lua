-- Queues one result for a site's PACS, once: the job's key names the result (kind, study,
-- version), so a repeated completion event does not send it twice.
-- KEYS: 1 due (zset), 2 job (hash).
-- ARGV: 1 now ms, 2 kind, 3 study, 4 site, 5 version.
-- Returns 1 when queued, 0 when the job already existed.
local due, job = KEYS[1], KEYS[2]
local now, kind, study, site, version = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', job) == 1 then return 0 end
redis.call('HSET', job, 'kind', kind, 'study', study, 'site', site, 'version', version,
           'state', 'pending', 'attempts', 0, 'created', now)
redis.call('ZADD', due, now, job)
return 1
