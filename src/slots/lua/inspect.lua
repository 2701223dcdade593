--[[
  Count a business's live slots and tell whether one attempt holds one. Writes nothing.

  Input:
    KEYS[1] holders    ZSET   attemptId -> slot expiry, ms on the Redis clock

    ARGV[1] attemptId, or '' to skip that check

  Output:
    {liveHolders, attemptHolds (1/0)}; expired entries (score <= now) are not counted.
]]
local holders = KEYS[1]
local attemptId = ARGV[1]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local live = redis.call('ZCOUNT', holders, '(' .. now, '+inf')
local holds = 0
if attemptId ~= '' then
  local expiry = redis.call('ZSCORE', holders, attemptId)
  if expiry and tonumber(expiry) > now then holds = 1 end
end
return {live, holds}
