-- One chain's state for a signed checkpoint, read in one step (the log, the head and the
-- archive anchor share the chain's hash tag, so this is one slot). Entries moved to an archive
-- still count in the length, and a chain archived to its end reports the anchor's entry, so a
-- checkpoint means the same before and after archiving.
-- KEYS: 1 log stream, 2 head, 3 archive anchor
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
local archived = redis.call('HMGET', KEYS[3], 'id', 'hash', 'count')
if id == '' and archived[1] then id, hash = archived[1], archived[2] or '' end
length = length + (tonumber(archived[3]) or 0)
local head = redis.call('GET', KEYS[2]) or ''
return {length, id, hash, head}
