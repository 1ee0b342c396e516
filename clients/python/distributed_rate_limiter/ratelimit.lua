--[[
ratelimit.lua: the rl module's limits as one Redis Lua script, for servers where the module
cannot be loaded (managed Redis, Valkey). Shared by clients/node and clients/python, which
run it with EVALSHA (EVAL on NOSCRIPT) after the server answered RL.* with "unknown command".
Its decisions equal the module's: GCRA and SLIDING limits, sets of up to 4 decided
all-or-nothing, the binding limit, shadow, idle (clients/conformance/traces.json).

KEYS[1]  the client's key: the same name the module would use (the clients add their prefix,
         default "rl:"), so Redis Cluster routes it to the same slot and hash tags work.

OWNERSHIP. The script only touches keys it created: a hash holding the marker field `_rl`
(the format version, "1"). An absent key is created with the marker; any other key (another
type, or a hash without the marker: an application's `user:42`) is refused, for reads and
writes alike, before anything is written, with the error
    ERR key is not a rate limit of this client (it holds other data)
(the clients raise it as ForeignKey). Keys written by the 0.1 script (no marker) are refused
the same way: delete them, or keep the new default prefix.

The hash:
  _rl   "1"
  u     the usage, one item per limit joined by "|", in the order of the limits:
          g:<ms>:<frac>:<den>      GCRA: the theoretical arrival time exactly, ms + frac/den
                                   Unix ms (den the limit that wrote it, 0 <= frac < den)
          s[:<at_ms>:<count>]...   SLIDING: the log, (instant, requests) oldest first
  p     the stored policy (RL.CONFIG), limits joined by "|": g:<limit>:<window_ms>:<burst> or
        s:<limit>:<window_ms>                                          [configured only]
  i, s  idle_ms (0: never forgotten) and shadow (1: observe only)       [configured only]
A usage-only key (no p) expires, with PEXPIREAT, at the first ms every limit is empty, as the
module's keys do. A configured key does not expire unless i > 0 (then at the latest of that
instant and idle_ms after its last allowed request or reset).

ARGV[1]  the operation; ARGV[2] now_ms: "" reads the server clock (TIME). A number is used as
         the current Unix ms instead: ONLY for tests that replay traces at exact instants; an
         application passes "" (both clients do).
A LIMIT is 4 arguments: kind ("gcra" or "sliding"), limit, window_ms, burst ("": the limit;
SLIDING takes no burst, so "" only). A policy is 1 to 4 limits in a row.

  check   ARGV[3] cost, ARGV[4] "" or "withpolicy", ARGV[5..] the inline policy (0 limits:
          none). Decides and counts like RL.THROTTLE. Reply, as RL.THROTTLE's RESP2 array:
            {allowed 1/0, limit, remaining, retry_after_ms (-1: allowed or never), reset_after_ms}
          plus binding (0-based) when the policy has several limits; with "withpolicy"
          always 8 fields: ..., binding, source ("stored"/"inline"), limits (one
          {kind, limit, window_ms, burst} per limit: the enforced policy).
  peek    the same arguments and reply; counts nothing, writes nothing.
  config  ARGV[3] idle_ms ("" or 0: none), ARGV[4] shadow ("1" or "0"), ARGV[5..] the policy.
          -> "OK". Keeps the usage (a limit that changes kind carries it over as the module
          does; a limit added at the end starts empty).
  reset   -> ms of backlog forgotten. A usage-only key is deleted; a configured one emptied.
  info    -> RL.INFO's RESP2 flat list of names and values (with `kind` and `limits` for a
          SLIDING or several-limit key), or nil for an absent key.
  export  -> nil for an absent key; else {configured 1/0, idle_ms, shadow 1/0, limits} with
          limits as in check's withpolicy reply (empty for a usage-only key), and DELETES the
          key: a client that finds the module loaded moves a configured key to RL.CONFIG
          (its usage is not carried: at most one window of usage is forgotten).
New operations (issues 19, 20) are one more entry in OPS at the end.

Policy precedence: the key's stored policy, else the call's inline one, else the error
"no rate limit". There is no server default (rl.default-limit) and no rl.scale-percent here.

Why the bounds. Lua 5.1 numbers are doubles, exact only for integers up to 2^53. A GCRA
limit is decided in units of 1/limit ms, relative to now (a backlog, never an absolute instant
times the limit), with whole ms and the fraction of a ms kept apart; every product is then at
most burst * window_ms plus a limit, or frac * limit when a changed limit converts a stored
fraction. So a GCRA limit must have
    limit <= 2^26 (67,108,864)   and   burst * window_ms <= 2^51 (2,251,799,813,685,248)
(1,000 per second with burst 1,000 is 10^6; a million per day is 8.64*10^13); the script
refuses others before any decision. SLIDING limits (<= 1000 per window <= 2^32-1 ms) always fit.
Functions used: redis.call, redis.pcall, redis.error_reply, pcall, error, type, tonumber,
ipairs, unpack (table.unpack as a fallback), string.format, and the string methods match,
gmatch, sub and lower, table.concat, math.floor/max/min. Commands: HMGET, EXISTS, HSET, DEL,
PEXPIREAT, PERSIST, PEXPIRETIME (Redis 7.0+), TIME.
--]]

local MAX_LIMIT, MAX_WINDOW, MAX_BURST, MAX_COST = 1e9, 1e12, 1e9, 1e9
local MAX_DRAIN_MS = 1e13
local LUA_MAX_LIMIT, LUA_MAX_TOLERANCE = 67108864, 2251799813685248
local MAX_SLIDING_LIMIT, MAX_SLIDING_WINDOW = 1000, 4294967295
local MAX_LIMITS = 4
local VERSION = '1'
local FOREIGN = 'ERR key is not a rate limit of this client (it holds other data)'
local NO_POLICY = 'ERR no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit'
local unpack = unpack or table.unpack

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

-- Exact floor(a / b) for integers |a|, b < 2^53 (the quotient of doubles may round up).
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

local function cdiv(a, b) return -fdiv(-a, b) end

local function str(n) return string.format('%.0f', n) end

-- Policies ------------------------------------------------------------------------------

local RANGE = {
  limit = 'ERR limit must be an integer from 1 to 1000000000',
  window = 'ERR window_ms must be an integer from 1 to 1000000000000',
  burst = 'ERR burst must be an integer from 1 to 1000000000',
}

-- One limit from (kind, limit, window_ms, burst) strings, validated with the module's words.
local function limit_of(kind, l, w, b)
  kind = type(kind) == 'string' and kind:lower() or ''
  if kind == 'sliding' or kind == 's' then
    l = int(l, 0, MAX_LIMIT, RANGE.limit)
    if l == 0 then fail(RANGE.limit) end
    if l > MAX_SLIDING_LIMIT then
      fail('ERR a SLIDING limit must be an integer from 1 to 1000 (use GCRA for more requests per window)')
    end
    if type(w) ~= 'string' or not w:match('^%d+$') or #w > 16 or tonumber(w) == 0 then fail(RANGE.window) end
    w = tonumber(w)
    if w > MAX_WINDOW then fail(RANGE.window) end
    if w > MAX_SLIDING_WINDOW then
      fail('ERR a SLIDING window_ms must be an integer from 1 to 4294967295 (about 49 days)')
    end
    if b ~= nil and b ~= '' and b ~= str(l) then
      fail('ERR BURST applies to GCRA limits only: a SLIDING limit\'s burst is its limit')
    end
    return {k = 's', l = l, w = w, b = l}
  end
  if kind ~= 'gcra' and kind ~= 'g' then
    fail('ERR unknown limit kind: a limit is GCRA (the default) or SLIDING')
  end
  l = int(l, 1, MAX_LIMIT, RANGE.limit)
  w = int(w, 1, MAX_WINDOW, RANGE.window)
  if b == nil or b == '' then b = l else b = int(b, 1, MAX_BURST, RANGE.burst) end
  -- burst * window_ms / limit <= 10^13, compared without dividing; exact up to 2^53, and
  -- above that the product is already far past the Lua bound checked next.
  if b * w > MAX_DRAIN_MS * l then
    fail('ERR burst * window_ms / limit is too large: a full bucket must drain within 10000000000000 ms')
  end
  if l > LUA_MAX_LIMIT or b * w > LUA_MAX_TOLERANCE then
    fail('ERR policy out of the Lua fallback\'s exact range (limit <= 67108864 and burst * window_ms <= 2251799813685248): load the rl module for it')
  end
  return {k = 'g', l = l, w = w, b = b}
end

-- The limits given as ARGV[first..], 4 per limit; nil when there are none.
local function limits_from_argv(first)
  local n = #ARGV - first + 1
  if n <= 0 then return nil end
  if n % 4 ~= 0 then fail('ERR syntax error: a limit is kind, limit, window_ms, burst') end
  if n / 4 > MAX_LIMITS then fail('ERR too many limits: a key holds at most 4 (joined by AND)') end
  local out = {}
  for i = first, #ARGV, 4 do
    out[#out + 1] = limit_of(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  end
  return out
end

local function encode_limits(limits)
  local parts = {}
  for i, p in ipairs(limits) do
    parts[i] = p.k == 'g' and ('g:' .. str(p.l) .. ':' .. str(p.w) .. ':' .. str(p.b))
      or ('s:' .. str(p.l) .. ':' .. str(p.w))
  end
  return table.concat(parts, '|')
end

local function decode_limits(text)
  local out = {}
  for item in text:gmatch('[^|]+') do
    local k, l, w, b = item:match('^(%a):(%d+):(%d+):?(%d*)$')
    if k == nil then fail(FOREIGN) end
    out[#out + 1] = limit_of(k, l, w, b)
  end
  return out
end

-- Usage: a GCRA TAT {ms, frac, den} or a SLIDING log {{at, count}, ...} --------------------

local function empty_usage(p)
  if p.k == 'g' then return {k = 'g', t = 0, f = 0, d = 1} end
  return {k = 's', log = {}}
end

local function encode_usage(usage)
  local parts = {}
  for i, u in ipairs(usage) do
    if u.k == 'g' then
      parts[i] = 'g:' .. str(u.t) .. ':' .. str(u.f) .. ':' .. str(u.d)
    else
      local s = {'s'}
      for _, e in ipairs(u.log) do s[#s + 1] = str(e[1]) .. ':' .. str(e[2]) end
      parts[i] = table.concat(s, ':')
    end
  end
  return table.concat(parts, '|')
end

local function decode_usage(text)
  local out = {}
  if text == nil or text == false then return out end
  for item in text:gmatch('[^|]+') do
    local kind = item:sub(1, 1)
    if kind == 'g' then
      local t, f, d = item:match('^g:(%d+):(%d+):(%d+)$')
      if t == nil then fail(FOREIGN) end
      out[#out + 1] = {k = 'g', t = tonumber(t), f = tonumber(f), d = tonumber(d)}
    else
      local log = {}
      for at, c in item:sub(3):gmatch('(%d+):(%d+)') do log[#log + 1] = {tonumber(at), tonumber(c)} end
      out[#out + 1] = {k = 's', log = log}
    end
  end
  return out
end

-- GCRA (gcra.rs, verdict.rs) -------------------------------------------------------------

-- The TAT in units of 1/limit ms as (ms, frac): exact when `limit` wrote it, else the
-- fraction rounded up (never more room than exact), as the module does.
local function tat_in(u, limit)
  if u.d == limit or u.f == 0 then return u.t, u.f end
  local f = cdiv(u.f * limit, u.d)
  if f == limit then return u.t + 1, 0 end
  return u.t, f
end

-- The backlog at `now` in 1/limit-ms units (0 for an empty bucket), read as at most one full
-- bucket (the module's clamp after a clock step), and whether it was clamped.
local function backlog(p, u, now)
  local t, f = tat_in(u, p.l)
  local d = t - now
  if d < 0 then return 0, false end
  local tol = p.b * p.w
  if d > fdiv(tol, p.l) + 1 then return tol, true end
  local b = d * p.l + f
  if b > tol then return tol, true end
  return b, false
end

-- A TAT `units` (>= 0) of 1/limit ms after now.
local function tat_at(p, now, units)
  local q = fdiv(units, p.l)
  return {k = 'g', t = now + q, f = units - q * p.l, d = p.l}
end

local function gcra_empty_at(u)
  if u.f > 0 then return u.t + 1 end
  return u.t
end

-- SLIDING (sliding.rs) --------------------------------------------------------------------

-- Entries as seen at now, future ones read as now, those still in (now - w, now].
local function live(p, log, now)
  local out = {}
  for _, e in ipairs(log) do
    local at = math.min(e[1], now)
    if at + p.w > now then out[#out + 1] = {at, e[2]} end
  end
  return out
end

local function used(p, log, now)
  local n = 0
  for _, e in ipairs(live(p, log, now)) do n = n + e[2] end
  return n
end

local function log_empty_at(p, log, now)
  local l = live(p, log, now)
  if #l == 0 then return now end
  return l[#l][1] + p.w
end

-- Merges equal adjacent instants (entries read as now after a clock step).
local function merged(parts)
  local out = {}
  for _, e in ipairs(parts) do
    local last = out[#out]
    if last ~= nil and last[1] == e[1] then last[2] = last[2] + e[2] else out[#out + 1] = {e[1], e[2]} end
  end
  return out
end

-- The log with future entries moved to now; and whether anything moved.
local function clamp_future(log, now)
  if #log == 0 or log[#log][1] <= now then return log, false end
  local parts = {}
  for i, e in ipairs(log) do parts[i] = {math.min(e[1], now), e[2]} end
  return merged(parts), true
end

local function record(p, log, now, cost)
  local l = live(p, log, now)
  local last = l[#l]
  if last ~= nil and last[1] == now then last[2] = last[2] + cost else l[#l + 1] = {now, cost} end
  return merged(l)
end

-- Changing a limit's kind keeps usage as time (limits.rs, Usage::carried_to) ---------------

local function carried_to(u, p, now)
  if u.k == p.k then return u end
  if p.k == 'g' then
    -- SLIDING -> GCRA: the requests replayed into the bucket, each at its instant.
    local ms, frac = 0, 0
    local q, r = fdiv(p.w, p.l), p.w % p.l
    for _, e in ipairs(u.log) do
      local at = math.min(e[1], now)
      if ms < at then ms, frac = at, 0 end
      frac = frac + e[2] * r
      ms = ms + e[2] * q + fdiv(frac, p.l)
      frac = frac % p.l
    end
    return {k = 'g', t = ms, f = frac, d = p.l}
  end
  -- GCRA -> SLIDING: the backlog as the same share of the window's limit (rounded up), one
  -- entry that leaves the window when the bucket would have been empty.
  local empty_at = gcra_empty_at(u)
  if empty_at <= now then return {k = 's', log = {}} end
  local ms = empty_at - now
  local count = p.l
  if ms < p.w then count = math.min(cdiv(ms * p.l, p.w), p.l) end
  local at = math.min(math.max(empty_at - p.w, 0), now)
  return {k = 's', log = {{at, count}}}
end

-- Usage made to match the limits position by position.
local function align(limits, usage, now)
  local out = {}
  for i, p in ipairs(limits) do
    local u = usage[i]
    if u == nil then out[i] = empty_usage(p) else out[i] = carried_to(u, p, now) end
  end
  return out
end

local function empty_at_all(limits, usage, now)
  local at = now
  for i, p in ipairs(limits) do
    local u = usage[i]
    if u.k == 'g' then at = math.max(at, gcra_empty_at(u)) else at = math.max(at, log_empty_at(p, u.log, now)) end
  end
  return at
end

-- One request against a set (limits.rs, decide) -------------------------------------------

-- Returns the outcome {allowed, binding, limit, remaining, retry, reset, each} and the new
-- usage (nil when nothing is to be written: denied without a clock repair).
local function decide(limits, usage, now, cost)
  usage = align(limits, usage, now)
  local repaired = false
  local before = {}
  for i, p in ipairs(limits) do
    local u = usage[i]
    if p.k == 's' then
      local log, moved = clamp_future(u.log, now)
      usage[i] = {k = 's', log = log}
      repaired = repaired or moved
    else
      local b, clamped = backlog(p, u, now)
      if clamped then
        usage[i] = tat_at(p, now, b)
        repaired = true
      end
      before[i] = b
    end
  end
  local admits, allowed = {}, true
  for i, p in ipairs(limits) do
    if p.k == 'g' then
      admits[i] = cost <= p.b and before[i] + cost * p.w <= p.b * p.w
    else
      admits[i] = cost <= p.l and used(p, usage[i].log, now) + cost <= p.l
    end
    allowed = allowed and admits[i]
  end
  local each, new = {}, {}
  for i, p in ipairs(limits) do
    local u, v = usage[i], {}
    if p.k == 'g' then
      local tol = p.b * p.w
      local after = before[i]
      if allowed then after = before[i] + cost * p.w end
      v.limit = p.b
      v.remaining = fdiv(math.max(tol - after, 0), p.w)
      v.reset = cdiv(after, p.l)
      if not admits[i] and cost <= p.b then v.retry = math.max(cdiv(before[i] + cost * p.w - tol, p.l), 1) end
      new[i] = allowed and tat_at(p, now, after) or u
    else
      local log = u.log
      if allowed then log = record(p, log, now, cost) end
      v.limit = p.l
      v.remaining = math.max(p.l - used(p, log, now), 0)
      v.reset = log_empty_at(p, log, now) - now
      if not admits[i] and cost <= p.l then
        local l = live(p, u.log, now)
        local rest = 0
        for _, e in ipairs(l) do rest = rest + e[2] end
        for _, e in ipairs(l) do
          rest = rest - e[2]
          if rest + cost <= p.l then
            v.retry = math.max(e[1] + p.w - now, 1)
            break
          end
        end
      end
      new[i] = {k = 's', log = log}
    end
    each[i] = v
  end
  local binding, never = 1, nil
  for i, p in ipairs(limits) do
    if never == nil and cost > p.b then never = i end
  end
  if allowed then
    for i = 2, #limits do
      if each[i].remaining < each[binding].remaining then binding = i end
    end
  elseif never ~= nil then
    binding = never
  else
    local longest = -1
    for i = 1, #limits do
      if not admits[i] and (each[i].retry or -1) > longest then binding, longest = i, each[i].retry or -1 end
    end
  end
  local remaining = each[1].remaining
  for i = 2, #limits do remaining = math.min(remaining, each[i].remaining) end
  local retry = -1
  if not allowed and never == nil then retry = each[binding].retry or -1 end
  local out = {allowed = allowed, binding = binding - 1, limit = each[binding].limit, remaining = remaining,
               retry = retry, reset = each[binding].reset, each = each}
  if allowed or repaired then return out, new end
  return out, nil
end

-- The key ---------------------------------------------------------------------------------

local FIELDS = {'_rl', 'u', 'p', 'i', 's'}

-- The key's state, or nil when absent; refuses a key that is not ours.
local function load(key)
  local h = redis.pcall('HMGET', key, unpack(FIELDS))
  if type(h) ~= 'table' or h.err then fail(FOREIGN) end
  if h[1] == false then
    if redis.call('EXISTS', key) == 1 then fail(FOREIGN) end
    return nil
  end
  if h[1] ~= VERSION then fail(FOREIGN) end
  local st = {usage = decode_usage(h[2]), idle = tonumber(h[4]) or 0, shadow = h[5] == '1'}
  if h[3] then st.limits = decode_limits(h[3]) end
  return st
end

local function expire(key, st, empty_at, now)
  if st.limits == nil then
    redis.call('PEXPIREAT', key, str(empty_at))
  elseif st.idle > 0 then
    redis.call('PEXPIREAT', key, str(math.max(empty_at, now + st.idle)))
  end
end

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return int(arg, 1, 2^52, 'ERR now_ms must be an integer') end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function policy_reply(limits)
  local out = {}
  for i, p in ipairs(limits) do out[i] = {p.k == 'g' and 'gcra' or 'sliding', p.l, p.w, p.b} end
  return out
end

-- Operations ------------------------------------------------------------------------------

local function check(key, now, consume)
  local cost = int(ARGV[3], 1, MAX_COST, 'ERR cost must be an integer from 1 to 1000000000')
  local withpolicy = ARGV[4] == 'withpolicy'
  local inline = limits_from_argv(5)
  local st = load(key)
  local limits, source = nil, 'stored'
  if st ~= nil and st.limits ~= nil then
    limits = st.limits
  elseif inline ~= nil then
    limits, source = inline, 'inline'
  else
    fail(NO_POLICY)
  end
  local usage = st and st.usage or {}
  local o, new = decide(limits, usage, now, cost)
  local shadow = source == 'stored' and st.shadow
  if consume and new ~= nil then
    if st == nil then st = {idle = 0, shadow = false} end
    redis.call('HSET', key, '_rl', VERSION, 'u', encode_usage(new))
    expire(key, st, empty_at_all(limits, new, now), now)
  end
  local retry = o.retry
  if shadow and not o.allowed then retry = -1 end
  local reply = {(o.allowed or shadow) and 1 or 0, o.limit, o.remaining, retry, o.reset}
  if withpolicy then
    reply[6], reply[7], reply[8] = o.binding, source, policy_reply(limits)
  elseif #limits > 1 then
    reply[6] = o.binding
  end
  return reply
end

local function config(key, now)
  local idle = ARGV[3]
  if idle == nil or idle == '' then idle = 0 else
    idle = int(idle, 0, MAX_WINDOW, 'ERR idle_ms must be an integer from 1 to 1000000000000')
  end
  local shadow = ARGV[4] == '1' and '1' or '0'
  local limits = limits_from_argv(5)
  if limits == nil then fail('ERR wrong number of arguments for \'rl.config\' command') end
  local st = load(key) or {usage = {}}
  local usage = align(limits, st.usage, now)
  redis.call('HSET', key, '_rl', VERSION, 'u', encode_usage(usage), 'p', encode_limits(limits),
             'i', str(idle), 's', shadow)
  if idle > 0 then
    redis.call('PEXPIREAT', key, str(math.max(empty_at_all(limits, usage, now), now + idle)))
  else
    redis.call('PERSIST', key) -- configuration does not expire without IDLE
  end
  return {ok = 'OK'}
end

local function reset(key, now)
  local st = load(key)
  if st == nil then return 0 end
  if st.limits == nil then
    local usage, forgotten = st.usage, math.max(redis.call('PEXPIRETIME', key) - now, 0)
    if #usage == 1 and usage[1].k == 'g' then forgotten = math.max(gcra_empty_at(usage[1]) - now, 0) end
    redis.call('DEL', key)
    return forgotten
  end
  local usage = align(st.limits, st.usage, now)
  local forgotten = empty_at_all(st.limits, usage, now) - now
  local empty = {}
  for i, p in ipairs(st.limits) do empty[i] = empty_usage(p) end
  redis.call('HSET', key, 'u', encode_usage(empty))
  if st.idle > 0 then redis.call('PEXPIREAT', key, str(now + st.idle)) end
  return forgotten
end

local function info(key, now)
  local st = load(key)
  if st == nil then return false end
  local limits, usage = st.limits, st.usage
  local set = (limits ~= nil and (#limits > 1 or limits[1].k == 's'))
    or (limits == nil and (#usage > 1 or (usage[1] ~= nil and usage[1].k == 's')))
  if limits == nil then
    local reset_after = 0
    if not set and usage[1] ~= nil then reset_after = math.max(gcra_empty_at(usage[1]) - now, 0) end
    local out = {'source', 'none', 'limit', false, 'window_ms', false, 'burst', false, 'idle_ms', false,
                 'shadow', false, 'scale_percent', 100, 'remaining', false, 'reset_after_ms', reset_after}
    if set then
      for _, v in ipairs({'kind', false, 'limits', false}) do out[#out + 1] = v end
    end
    return out
  end
  local o = decide(limits, usage, now, 2^53)
  usage = align(limits, usage, now)
  local first = limits[1]
  local out = {'source', 'stored', 'limit', first.l, 'window_ms', first.w, 'burst', first.b,
               'idle_ms', st.idle, 'shadow', st.shadow and 1 or 0, 'scale_percent', 100,
               'remaining', o.remaining, 'reset_after_ms', empty_at_all(limits, usage, now) - now}
  if set then
    local each = {}
    for i, p in ipairs(limits) do
      each[i] = {'kind', p.k == 'g' and 'gcra' or 'sliding', 'limit', p.l, 'window_ms', p.w, 'burst', p.b,
                 'remaining', o.each[i].remaining, 'reset_after_ms', o.each[i].reset}
    end
    for _, v in ipairs({'kind', first.k == 'g' and 'gcra' or 'sliding', 'limits', each}) do out[#out + 1] = v end
  end
  return out
end

local function export(key, now)
  local st = load(key)
  if st == nil then return false end
  redis.call('DEL', key)
  if st.limits == nil then return {0, 0, 0, {}} end
  return {1, st.idle, st.shadow and 1 or 0, policy_reply(st.limits)}
end

local OPS = {
  check = function(key, now) return check(key, now, true) end,
  peek = function(key, now) return check(key, now, false) end,
  config = config,
  reset = reset,
  info = info,
  export = export,
}

local function main()
  local op = OPS[ARGV[1]]
  if op == nil then fail('ERR ratelimit.lua: unknown operation') end
  return op(KEYS[1], now_ms(ARGV[2]))
end

-- Errors go back as plain error replies with the module's wording (error() would append the
-- script's sha and line). Every write happens after every check, so a failed call changes
-- nothing.
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' and res.err then return redis.error_reply(res.err) end
if type(res) == 'string' and res:match('^%u+ ') then return redis.error_reply(res) end
error(res)
