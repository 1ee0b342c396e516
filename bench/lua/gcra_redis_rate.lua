-- GCRA in Lua, as go-redis/redis_rate runs it: its `allowN` script, verbatim in logic
-- (github.com/go-redis/redis_rate, lua.go, itself from rwz/redis-gcra's
-- perform_gcra_ratelimit.lua, (c) 2017 Pavel Pravosud, MIT). Only the comments are ours.
-- Called as: EVALSHA <sha> 1 key burst rate period_s cost
-- State: one string key holding the TAT as a float of seconds since 2017-01-01, set with
-- EX (whole seconds, rounded up) on every allowed request; a denial writes nothing.

-- A no-op since Redis 7 (effects replication is the default); kept as redis_rate has it.
redis.replicate_commands()

local rate_limit_key = KEYS[1]
local burst = ARGV[1]
local rate = ARGV[2]
local period = ARGV[3]
local cost = tonumber(ARGV[4])

local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst

-- Seconds since 2017-01-01 as a float (microsecond resolution), to stay inside a double.
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tat = redis.call("GET", rate_limit_key)

if not tat then
  tat = now
else
  tat = tonumber(tat)
end

tat = math.max(tat, now)

local new_tat = tat + increment
local allow_at = new_tat - burst_offset

local diff = now - allow_at
local remaining = math.floor(diff / emission_interval + 0.5)

if remaining >= 0 then
  local reset_after = new_tat - now
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
  local retry_after = -1
  return {cost, remaining, tostring(retry_after), tostring(reset_after)}
end

remaining = 0
local reset_after = tat - now
local retry_after = diff * -1
return {0, remaining, tostring(retry_after), tostring(reset_after)}
