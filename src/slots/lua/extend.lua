--[[
  Push a held slot's expiry out to now + ttlMs (call-progress events). Never shortens it.

  Input:
    KEYS[1] holders    ZSET   attemptId -> slot expiry, ms on the Redis clock

    ARGV[1] attemptId
    ARGV[2] ttlMs

  Output:
    1 if the attempt holds a live slot (now extended), 0 if not (never held, released, expired).
]]
local holders = KEYS[1]
local attemptId = ARGV[1]
local ttlMs = tonumber(ARGV[2])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local current = redis.call('ZSCORE', holders, attemptId)
if (not current) or tonumber(current) <= now then
  return 0
end
local expiry = now + ttlMs
if expiry > tonumber(current) then
  redis.call('ZADD', holders, expiry, attemptId)
  local pttl = redis.call('PTTL', holders)
  if pttl == -1 or (pttl >= 0 and pttl < ttlMs) then
    redis.call('PEXPIRE', holders, ttlMs)
  end
end
return 1
