-- Fixed-window counter: the "rate limiter 2" pattern of the Redis INCR documentation (INCR,
-- and EXPIRE when the counter was just created), here with PEXPIRE and run as one script
-- (EVALSHA), as that page recommends, so that a crash between the two commands cannot leave
-- a counter that never expires.
-- Called as: EVALSHA <sha> 1 key limit window_ms. Replies 1 (allowed) or 0 (denied).
-- Memory: one integer string per client per window; it allows up to 2*limit requests across
-- a window boundary.
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n <= tonumber(ARGV[1]) then
  return 1
end
return 0
