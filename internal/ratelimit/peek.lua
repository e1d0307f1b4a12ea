-- Whether one more event fits in the sliding window of window.lua,
-- without adding it. KEYS[1] as there; ARGV: max, period in microseconds.
-- Returns {1, remaining, 0} when it fits, {0, 0, retry after in microseconds} when not.
local max = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Events at least a period old no longer count (as in window.lua).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
local n = redis.call('ZCARD', KEYS[1])
if n < max then
  return {1, max - n, 0}
end
-- The event that must leave the window before another fits.
local first = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
local wait = tonumber(first[2]) + per - now
if wait < 1 then wait = 1 end
return {0, 0, wait}
