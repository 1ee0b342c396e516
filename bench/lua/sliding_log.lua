-- Sliding-window log on a sorted set: one member per allowed request, scored by its time in
-- ms; a request passes if fewer than `limit` members are younger than `window_ms`. Run as
-- one script (EVALSHA) because that is how users make the four steps atomic; in a MULTI the
-- count could not decide whether to add.
-- Called as: EVALSHA <sha> 1 key limit window_ms. Replies 1 (allowed) or 0 (denied).
-- Memory grows with the limit: up to `limit` members per client, each ~20 bytes of member
-- plus its score.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])

local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)

redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', key)
if count >= limit then
  return 0
end
-- The member must be unique per request: the time in microseconds, plus the count, which
-- grows by one for each request added within the same microsecond.
redis.call('ZADD', key, now_ms, string.format('%d%06d-%d', t[1], t[2], count))
redis.call('PEXPIRE', key, window_ms)
return 1
