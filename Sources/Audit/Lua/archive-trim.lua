-- Removes an archived segment from its chain's stream and moves the chain's archive anchor to
-- the segment's last entry, in one step. It runs only after the segment's file is on disk, and
-- only if the anchor is still where the archiver found it and the stream still begins with
-- exactly the segment's entries carrying the hashes written to the file, so neither a crashed
-- run nor a concurrent archiver can remove an entry the archive does not hold.
-- KEYS: 1 log stream, 2 archive anchor, 3.. the study indexes of the segment's entries
-- ARGV: 1 anchor id expected now ('' for none), 2 SHA-256 of the segment's manifest,
--       3 segment sequence, then per entry in chain order: id, hash, study index (its
--       position among KEYS[3..], 1-based; 0 when the entry names no study)
-- Returns the number of entries removed; errors ANCHOR (the anchor moved) or MISMATCH (the
-- stream does not begin with the segment).
local current = redis.call('HGET', KEYS[2], 'id') or ''
if current ~= ARGV[1] then
  return redis.error_reply('ANCHOR the archive anchor is at ' .. (current == '' and 'none' or current))
end
local n = (#ARGV - 3) / 3
if n < 1 or n ~= math.floor(n) then return redis.error_reply('ERR archive-trim: bad arguments') end
local function arg(i, k) return ARGV[3 + (i - 1) * 3 + k] end
local last_id, last_hash = arg(n, 1), arg(n, 2)
local live = redis.call('XRANGE', KEYS[1], '-', last_id)
if #live ~= n then
  return redis.error_reply('MISMATCH the stream holds ' .. #live .. ' entries up to ' .. last_id .. ', the segment ' .. n)
end
for i = 1, n do
  local fields, hash = live[i][2], nil
  for f = 1, #fields, 2 do
    if fields[f] == 'hash' then hash = fields[f + 1] end
  end
  if live[i][1] ~= arg(i, 1) or hash ~= arg(i, 2) then
    return redis.error_reply('MISMATCH entry ' .. live[i][1] .. ' differs from the archived one')
  end
end
-- XDEL frees a stream node once all its entries are gone; batches keep unpack() small.
for i = 1, n, 500 do
  local ids = {}
  for j = i, math.min(n, i + 499) do ids[#ids + 1] = arg(j, 1) end
  redis.call('XDEL', KEYS[1], unpack(ids))
end
for i = 1, n do
  local index = tonumber(arg(i, 3)) or 0
  if index > 0 then redis.call('ZREM', KEYS[2 + index], arg(i, 1)) end
end
local count = (tonumber(redis.call('HGET', KEYS[2], 'count')) or 0) + n
redis.call('HSET', KEYS[2], 'id', last_id, 'hash', last_hash, 'count', string.format('%d', count),
           'manifest', ARGV[2], 'segments', ARGV[3])
return n
