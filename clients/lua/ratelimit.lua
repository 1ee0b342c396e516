--[[
ratelimit.lua: the rl module's GCRA as one Redis Lua script, for servers where the module
cannot be loaded (managed Redis, Valkey). Shared by clients/node and clients/python, which
run it with EVALSHA (reloading it on NOSCRIPT) only after the server answered RL.* with
"unknown command". Its decisions equal the module's (clients/conformance/traces.json).

KEYS[1]  the client's state key: the same name the module would use, so Redis Cluster routes
         it to the same slot (hash tags work). It holds a hash:
           t, f, d   the theoretical arrival time (TAT) exactly, t + f/d Unix ms
                     (d is the limit of the policy that wrote it, 0 <= f < d)
           l, w, b   the stored policy (RL.CONFIG): limit, window_ms, burst   [configured only]
           i, s      idle_ms (0: never forgotten) and shadow (1: observe only) [configured only]
         A usage-only key (no l) expires, with PEXPIREAT, at the first ms its bucket is
         empty, as the module's keys do. A configured key does not expire unless i > 0.

ARGV[1]  the operation, ARGV[2] now_ms: "" reads the server clock (TIME); a number is used
         as the current Unix ms instead. The override exists ONLY for tests that replay
         traces at exact instants; an application must pass "" (clients do).
  check  ARGV[3] cost, ARGV[4..6] inline limit, window_ms, burst ("" when absent)
         -> {allowed 1/0, burst, remaining, retry_after_ms (-1: allowed or never), reset_after_ms}
  peek   same arguments and reply; counts nothing, writes nothing
  config ARGV[3..7] limit, window_ms, burst ("" or 0: limit), idle_ms (0: none), shadow (1/0) -> "OK"
  reset  -> ms of backlog forgotten
  info   -> flat list of field/value pairs like RL.INFO, or nil for an absent key

Policy precedence: the key's stored policy, else the call's inline one, else the error
"no rate limit". There is no server default (rl.default-limit) and no rl.scale-percent here.

Why the bounds. Lua 5.1 numbers are doubles, exact only for integers up to 2^53. The module
decides in units of 1/limit ms; so does this script, but relative to now (a backlog, never an
absolute instant times the limit), with whole ms and the fraction of a ms kept apart. Then
every product is at most burst * window_ms (the tolerance in those units) plus a limit, or
frac * limit when a reconfigured limit converts a stored fraction. The script therefore
refuses, with an error and before any decision, a policy with
    limit > 2^26 (67,108,864)   or   burst * window_ms > 2^51 (2,251,799,813,685,248)
(e.g. 1,000 per second with burst 1,000 is 10^6; a million per day is 8.64*10^13), and
otherwise every intermediate value stays below 2^53 and every decision is exact.
--]]

local MAX_LIMIT, MAX_WINDOW, MAX_BURST, MAX_COST = 1e9, 1e12, 1e9, 1e9
local MAX_DRAIN_MS = 1e13
local LUA_MAX_LIMIT, LUA_MAX_TOLERANCE = 67108864, 2251799813685248

local function fail(msg)
  return error({err = msg})
end

-- An integer argument within [lo, hi]; digits only, so "1e3" or "1.0" are refused.
local function int(s, lo, hi, msg)
  if type(s) ~= 'string' or not s:match('^%d+$') or #s > 16 then fail(msg) end
  local n = tonumber(s)
  if n < lo or n > hi then fail(msg) end
  return n
end

local function opt_int(s, lo, hi, msg)
  if s == nil or s == '' then return nil end
  return int(s, lo, hi, msg)
end

-- Exact floor(a / b) for integers |a|, b < 2^53 (the quotient of doubles may round up).
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

local function cdiv(a, b) return -fdiv(-a, b) end

local function str(n) return string.format('%.0f', n) end

local function policy(limit, window, burst)
  limit = int(limit, 1, MAX_LIMIT, 'ERR limit must be an integer from 1 to 1000000000')
  window = int(window, 1, MAX_WINDOW, 'ERR window_ms must be an integer from 1 to 1000000000000')
  burst = opt_int(burst, 0, MAX_BURST, 'ERR burst must be an integer from 1 to 1000000000') or 0
  if burst == 0 then burst = limit end
  -- burst * window_ms / limit <= 10^13, compared without dividing; exact up to 2^53, and
  -- above that the product is already far past the Lua bound checked next.
  if burst * window > MAX_DRAIN_MS * limit then
    fail('ERR burst * window_ms / limit is too large: a full bucket must drain within 10000000000000 ms')
  end
  if limit > LUA_MAX_LIMIT or burst * window > LUA_MAX_TOLERANCE then
    fail('ERR policy out of the Lua fallback\'s exact range (limit <= 67108864 and burst * window_ms <= 2251799813685248): load the rl module for it')
  end
  return {l = limit, w = window, b = burst}
end

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return int(arg, 1, 2^52, 'ERR now_ms must be an integer') end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The stored TAT in units of 1/limit ms as (ms, frac): exact when `limit` wrote it, else the
-- fraction rounded up (never more room than exact), as the module does.
local function tat_in(h, limit)
  local t, f, d = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 1
  if d == limit or f == 0 then return t, f end
  f = cdiv(f * limit, d)
  if f == limit then return t + 1, 0 end
  return t, f
end

-- Backlog at `now` of a bucket at (t, f), in 1/limit-ms units; nil when it exceeds the
-- tolerance (then nothing fits and the product would not be exact).
local function backlog(p, t, f, now)
  local d = t - now
  if d < 0 or (d == 0 and f == 0) then return 0 end
  if d > fdiv(p.b * p.w, p.l) then return nil end
  return d * p.l + f
end

local function remaining(p, t, f, now)
  local b = backlog(p, t, f, now)
  if b == nil then return 0 end
  local room = p.b * p.w - b
  if room <= 0 then return 0 end
  return fdiv(room, p.w)
end

local function empty_at(t, f)
  if f > 0 then return t + 1 end
  return t
end

local FIELDS = {'t', 'f', 'd', 'l', 'w', 'b', 'i', 's'}

local function check(key, now, consume)
  local cost = int(ARGV[3], 1, MAX_COST, 'ERR cost must be an integer from 1 to 1000000000')
  local h = redis.call('HMGET', key, unpack(FIELDS))
  local stored = h[4] ~= false
  local p
  if stored then
    p = policy(h[4], h[5], h[6])
  elseif ARGV[4] ~= nil and ARGV[4] ~= '' then
    p = policy(ARGV[4], ARGV[5], ARGV[6])
  else
    fail('ERR no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit')
  end
  local t, f = tat_in(h, p.l)
  local tolerance = p.b * p.w
  local allowed, nt, nf = false, t, f
  if cost <= p.b then
    local b = backlog(p, t, f, now)
    if b ~= nil and b + cost * p.w <= tolerance then
      allowed = true
      local st, sf = t, f
      if b == 0 then st, sf = now, 0 end
      local add = sf + cost * p.w
      nt, nf = st + fdiv(add, p.l), add % p.l
    end
  end
  local retry = -1
  local shadow = stored and h[8] == '1'
  if not allowed and cost <= p.b and not shadow then
    -- The first whole ms at which tat + cost*T - burst*T <= now; tat > now when denied.
    retry = math.max((t - now) + cdiv(f + cost * p.w - tolerance, p.l), 1)
  end
  if allowed and consume then
    redis.call('HSET', key, 't', str(nt), 'f', str(nf), 'd', str(p.l))
    local idle = tonumber(h[7]) or 0
    if not stored then
      redis.call('PEXPIREAT', key, str(empty_at(nt, nf)))
    elseif idle > 0 then
      redis.call('PEXPIREAT', key, str(math.max(empty_at(nt, nf), now + idle)))
    end
  end
  return {(allowed or shadow) and 1 or 0, p.b, remaining(p, nt, nf, now), retry,
          math.max(empty_at(nt, nf) - now, 0)}
end

local function config(key, now)
  local p = policy(ARGV[3], ARGV[4], ARGV[5])
  local idle = opt_int(ARGV[6], 0, MAX_WINDOW, 'ERR idle_ms must be an integer from 1 to 1000000000000') or 0
  local shadow = (ARGV[7] == '1') and '1' or '0'
  redis.call('HSET', key, 'l', str(p.l), 'w', str(p.w), 'b', str(p.b), 'i', str(idle), 's', shadow)
  if idle > 0 then
    local h = redis.call('HMGET', key, 't', 'f')
    local e = empty_at(tonumber(h[1]) or 0, tonumber(h[2]) or 0)
    redis.call('PEXPIREAT', key, str(math.max(e, now + idle)))
  else
    redis.call('PERSIST', key)  -- configuration does not expire without IDLE
  end
  return {ok = 'OK'}
end

local function reset(key, now)
  local h = redis.call('HMGET', key, unpack(FIELDS))
  if h[1] == false and h[4] == false then return 0 end
  local forgotten = math.max(empty_at(tonumber(h[1]) or 0, tonumber(h[2]) or 0) - now, 0)
  if forgotten == 0 then return 0 end
  if h[4] == false then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 't', '0', 'f', '0', 'd', '1')
    local idle = tonumber(h[7]) or 0
    if idle > 0 then redis.call('PEXPIREAT', key, str(now + idle)) end
  end
  return forgotten
end

local function info(key, now)
  local h = redis.call('HMGET', key, unpack(FIELDS))
  if h[1] == false and h[4] == false then return false end
  local t, f, d = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 1
  local reset_after = math.max(empty_at(t, f) - now, 0)
  if h[4] == false then
    return {'source', 'none', 'limit', false, 'window_ms', false, 'burst', false, 'idle_ms', false,
            'shadow', false, 'scale_percent', 100, 'remaining', false, 'reset_after_ms', reset_after}
  end
  local p = policy(h[4], h[5], h[6])
  local pt, pf = tat_in(h, p.l)
  return {'source', 'stored', 'limit', p.l, 'window_ms', p.w, 'burst', p.b, 'idle_ms', tonumber(h[7]) or 0,
          'shadow', tonumber(h[8]) or 0, 'scale_percent', 100, 'remaining', remaining(p, pt, pf, now),
          'reset_after_ms', reset_after}
end

local function main()
  local key, op = KEYS[1], ARGV[1]
  local now = now_ms(ARGV[2])
  if op == 'check' then return check(key, now, true) end
  if op == 'peek' then return check(key, now, false) end
  if op == 'config' then return config(key, now) end
  if op == 'reset' then return reset(key, now) end
  if op == 'info' then return info(key, now) end
  return fail('ERR ratelimit.lua: unknown operation')
end

-- Errors go back as plain error replies with the module's wording (error() would append
-- the script's sha and line). Every write happens after every check, so a failed call
-- changes nothing.
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' and res.err then return redis.error_reply(res.err) end
if type(res) == 'string' and res:match('^%u+ ') then return redis.error_reply(res) end
error(res)
