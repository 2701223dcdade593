--[[
  Withdraw a call attempt entirely: free its slot AND drop its queue entry. Used when an acquire
  is abandoned (aborted, instance closed, or its reply was lost), so nothing is left behind.
  Idempotent.

  Input:
    KEYS[1] holders    ZSET   attemptId -> slot expiry, ms on the Redis clock
    KEYS[2] waiters    ZSET   attemptId -> arrival number (queue order)
    KEYS[3] deadlines  ZSET   attemptId -> waiter deadline, ms on the Redis clock

    ARGV[1] attemptId
    ARGV[2] wake channel

  Output:
    {released, dequeued}: 1/0 each.

  Wakes the new queue head (one PUBLISH) when a slot was freed or the withdrawn attempt was the head.
]]
local holders, waiters, deadlines = KEYS[1], KEYS[2], KEYS[3]
local attemptId = ARGV[1]
local channel = ARGV[2]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local expired = redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
  redis.call('ZREM', waiters, lapsed)
end
redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)

local wasHead = redis.call('ZRANGE', waiters, 0, 0)[1] == attemptId
local dequeued = redis.call('ZREM', waiters, attemptId)
redis.call('ZREM', deadlines, attemptId)
local released = redis.call('ZREM', holders, attemptId)

if released + expired > 0 or wasHead then
  local head = redis.call('ZRANGE', waiters, 0, 0)[1]
  if head then redis.call('PUBLISH', channel, head) end
end
return {released, dequeued}
