-- Re-scores an expert (load/capacity plus jitter) in the pools where it is a member, after
-- its load changed.
-- KEYS: the router's (see _routing.lua), then the pools from K.first_pool.
-- ARGV: the router's 13, then NA+1 expert.
-- Returns 1.
--#include _routing
local id = ARGV[NA + 1]
local r = ratio(id)
local score = r + jitter(id)
for i = K.first_pool, #KEYS do redis.call('ZADD', KEYS[i], 'XX', score, id) end
return 1
