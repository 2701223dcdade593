--[[
  Take a call slot for one call attempt, or queue the attempt (FIFO per business) until one frees.

  Input:
    KEYS[1] holders    ZSET   attemptId -> slot expiry, ms on the Redis clock
    KEYS[2] waiters    ZSET   attemptId -> arrival number (queue order)
    KEYS[3] deadlines  ZSET   attemptId -> waiter deadline, ms on the Redis clock
    KEYS[4] arrivals   STRING counter that numbers arrivals

    ARGV[1] attemptId
    ARGV[2] limit       max live holders for the business (integer >= 1)
    ARGV[3] ttlMs       the slot lives this long unless extended or released
    ARGV[4] waitTtlMs   the queue entry lapses if not retried within this; 0 = try once, never queue
    ARGV[5] wake channel: receives the attempt id of the waiter that should retry now

  Output:
    {1, 0, -1}                    held: taken now, or already held (expiry pushed out, never shortened)
    {0, position, nextExpiryMs}   queued; position 0 is the head. nextExpiryMs: ms until the earliest
                                  holder expires (-1: no holder), so the head can retry right then
    {0, -1, nextExpiryMs}         not held and not queued (waitTtlMs = 0)

  Grants only to the live head of the queue (or to anyone when the queue is empty) while
  capacity allows; if capacity remains after a grant, wakes the next waiter.
]]
local holders, waiters, deadlines, arrivals = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local attemptId = ARGV[1]
local limit = tonumber(ARGV[2])
local ttlMs = tonumber(ARGV[3])
local waitTtlMs = tonumber(ARGV[4])
local channel = ARGV[5]

-- The Redis clock, never a client's: every process agrees on when a slot expires.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Raise a key's TTL to at least ms, never lower it: idle keys vanish once every entry is stale.
local function keepFor(key, ms)
  local pttl = redis.call('PTTL', key)
  if pttl == -1 or (pttl >= 0 and pttl < ms) then
    redis.call('PEXPIRE', key, ms)
  end
end

-- Each holder's score is its own expiry: purge only holders already past it.
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
-- Waiters that stopped retrying (crashed processes) leave the queue.
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
  redis.call('ZREM', waiters, lapsed)
end
redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)

local function hold()
  local expiry = now + ttlMs
  local current = redis.call('ZSCORE', holders, attemptId)
  if (not current) or tonumber(current) < expiry then
    redis.call('ZADD', holders, expiry, attemptId)
  end
  keepFor(holders, ttlMs)
  redis.call('ZREM', waiters, attemptId)
  redis.call('ZREM', deadlines, attemptId)
end

local function queueHead()
  return redis.call('ZRANGE', waiters, 0, 0)[1]
end

-- Already holding (a retry after a lost reply): keep the slot.
if redis.call('ZSCORE', holders, attemptId) then
  hold()
  return {1, 0, -1}
end

local held = redis.call('ZCARD', holders)
local head = queueHead()
if held < limit then
  if head == nil or head == attemptId then
    hold()
    if held + 1 < limit then
      local nextHead = queueHead()
      if nextHead then redis.call('PUBLISH', channel, nextHead) end
    end
    return {1, 0, -1}
  end
  -- A slot is free but an earlier waiter has not taken it: its wake may have been lost.
  redis.call('PUBLISH', channel, head)
end

local nextExpiryMs = -1
local earliest = redis.call('ZRANGE', holders, 0, 0, 'WITHSCORES')
if earliest[2] then nextExpiryMs = tonumber(earliest[2]) - now end

if waitTtlMs <= 0 then
  return {0, -1, nextExpiryMs}
end
if not redis.call('ZSCORE', waiters, attemptId) then
  redis.call('ZADD', waiters, redis.call('INCR', arrivals), attemptId)
end
-- Every retry refreshes the deadline; only a waiter that stops retrying lapses.
redis.call('ZADD', deadlines, now + waitTtlMs, attemptId)
keepFor(waiters, waitTtlMs)
keepFor(deadlines, waitTtlMs)
keepFor(arrivals, waitTtlMs)
return {0, redis.call('ZRANK', waiters, attemptId), nextExpiryMs}
