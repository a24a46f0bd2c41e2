-- One chain's state for a signed checkpoint, read in one step (the log and the head share the
-- chain's hash tag, so this is one slot).
-- KEYS: 1 log stream, 2 head
-- Returns: {length, last entry id ('' when empty), last entry hash ('' when empty), head ('' when missing)}
local length = redis.call('XLEN', KEYS[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id, hash = '', ''
if last[1] then
  id = last[1][1]
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'hash' then hash = fields[i + 1] end
  end
end
local head = redis.call('GET', KEYS[2]) or ''
return {length, id, hash, head}
