--[[
  Release the slot held by a call attempt. Idempotent: any process may call it, any number of times.

  Input:
    KEYS[1] holders    ZSET   attemptId -> slot expiry, ms on the Redis clock
    KEYS[2] waiters    ZSET   attemptId -> arrival number (queue order)
    KEYS[3] deadlines  ZSET   attemptId -> waiter deadline, ms on the Redis clock

    ARGV[1] attemptId
    ARGV[2] wake channel

  Output:
    1 if the attempt held a live slot, 0 otherwise (never held, already released, or expired).

  When a slot was freed (released here, or found expired), PUBLISHes the attempt id of the live
  queue head on the wake channel: one message, to one waiter. A waiter that is still queued is
  not affected (see withdraw.lua).
]]
local holders, waiters, deadlines = KEYS[1], KEYS[2], KEYS[3]
local attemptId = ARGV[1]
local channel = ARGV[2]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local expired = redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
-- Purge lapsed waiters first, so the wake goes to a waiter that is alive.
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
  redis.call('ZREM', waiters, lapsed)
end
redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)

local released = redis.call('ZREM', holders, attemptId)
if released + expired > 0 then
  local head = redis.call('ZRANGE', waiters, 0, 0)[1]
  if head then redis.call('PUBLISH', channel, head) end
end
return released
