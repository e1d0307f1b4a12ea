-- A sliding window log: KEYS[1] is a sorted set of the allowed events,
-- scored by their time in microseconds on Redis's clock.
-- ARGV: max, period in microseconds, the event's member (its name, or a
-- unique one for an unnamed event). A member already in the window is
-- allowed again without counting twice.
-- Returns {1, remaining, 0} when allowed, {0, 0, retry after in microseconds} when not.
local max = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Events at least a period old no longer count.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local left = max - n
  if left < 0 then left = 0 end
  return {1, left, 0}
end
if n < max then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(per / 1000) + 1)
  return {1, max - n - 1, 0}
end
-- The event that must leave the window before another fits.
local first = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
local wait = tonumber(first[2]) + per - now
if wait < 1 then wait = 1 end
return {0, 0, wait}
