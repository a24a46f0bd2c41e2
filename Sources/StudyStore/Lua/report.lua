-- An expert's report on a study: save a draft, sign it (final), or add an addendum after
-- signing — one step each, with its audit entry in the study's chain (hashes only: the text
-- is patient data and stays in the report key).
-- KEYS: 1-4 (see _study), 5 the report (JSON string)
-- ARGV: 1 actor, 2 operation (draft | final | addendum), 3 the new report JSON, 4 its hash
--   (the signed content's, or the addendum's), 5 case id, 6 author (expert id)
-- Returns {'ok', status} | {'same', status} (this exact report was already signed: a retry)
--   | {'err', code, status} with code unknown | signed (no draft after signing, no second
--   signature) | unsigned (an addendum needs a signed report).
--#include _study
local op, document, hash, case_id, author = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local uid = redis.call('HGET', K_RECORD, 'uid')
if not uid then return {'err', 'unknown', ''} end
local current = redis.call('GET', KEYS[5])
local status, current_hash = 'none', ''
if current then
  local decoded = cjson.decode(current)
  status, current_hash = decoded.status, decoded.hash
end
local action
if op == 'draft' then
  if status ~= 'none' and status ~= 'draft' then return {'err', 'signed', status} end
  action = 'report.draft'
elseif op == 'final' then
  if status == 'final' or status == 'amended' then
    if current_hash == hash then return {'same', status} end
    return {'err', 'signed', status}
  end
  action = 'report.signed'
elseif op == 'addendum' then
  if status ~= 'final' and status ~= 'amended' then return {'err', 'unsigned', status} end
  action = 'report.addendum'
else
  return redis.error_reply('unknown report operation ' .. op)
end
redis.call('SET', KEYS[5], document)
local ttl = redis.call('PTTL', K_RECORD)
if ttl > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
audit(ARGV[1], action, uid, 'case=' .. case_id .. ';expert=' .. author .. ';sha256=' .. hash)
return {'ok', cjson.decode(document).status}
