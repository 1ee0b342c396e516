-- Memory phase only: gives clients first..last (keys 'rl:' .. 12-digit number, as
-- redis-benchmark's __rand_int__ makes them) a full sliding log of `limit` entries: the
-- state sliding_log.lua leaves after `limit` allowed requests in one microsecond (members
-- '<us>-0' .. '<us>-<limit-1>', all scored now_ms). Members and scores have the lengths of
-- real ones (the benchmark compares MEMORY USAGE with a key filled through EVALSHA), and
-- one ZADD per client takes seconds where 10 million EVALSHA round trips would take minutes.
-- Called as: EVAL <this> 0 first last limit window_ms
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local us = string.format('%d%06d-', t[1], t[2])
local args = {}
for j = 0, limit - 1 do
  args[2 * j + 1] = now_ms
  args[2 * j + 2] = us .. j
end
for i = first, last do
  local key = string.format('rl:%012d', i)
  redis.call('ZADD', key, unpack(args))
  redis.call('PEXPIRE', key, window_ms)
end
return last - first + 1
