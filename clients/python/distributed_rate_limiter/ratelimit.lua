--[[
ratelimit.lua: the rl module's limits as one Redis Lua script, for servers where the module
cannot be loaded (managed Redis, Valkey). Shared by clients/node and clients/python, which
run it with EVALSHA (EVAL on NOSCRIPT) after the server answered RL.* with "unknown command".
Its decisions equal the module's: GCRA, SLIDING and CONCURRENCY limits, sets of up to 4
decided all-or-nothing, the binding limit, shadow, idle, refunds, reservations that settle,
penalties and blocks, leases (clients/conformance/traces.json and traces-ops.json).

KEYS[1]  the client's key: the same name the module would use (the clients add their prefix,
         default "rl:"), so Redis Cluster routes it to the same slot and hash tags work.

OWNERSHIP. The script only touches keys it created: a hash holding the marker field `_rl`
(the format version, "1"). An absent key is created with the marker; any other key (another
type, or a hash without the marker: an application's `user:42`) is refused, for reads and
writes alike, before anything is written, with the error
    ERR key is not a rate limit of this client (it holds other data)
(the clients raise it as ForeignKey). Keys written by the 0.1 script (no marker) are refused
the same way: delete them, or keep the new default prefix.

The hash (every field but _rl and u is absent when it has nothing to say):
  _rl   "1"
  u     the usage, one item per limit joined by "|", in the order of the limits:
          g:<ms>:<frac>:<den>      GCRA: the theoretical arrival time exactly, ms + frac/den
                                   Unix ms (den the limit that wrote it, 0 <= frac < den)
          s[:<at_ms>:<count>]...   SLIDING: the log, (instant, requests) oldest first
          c[:<id>:<cost>:<expires_at_ms>]...   CONCURRENCY: the leases, oldest first
  p     the stored policy (RL.CONFIG), limits joined by "|": g:<limit>:<window_ms>:<burst>,
        s:<limit>:<window_ms> or c:<limit>:<window_ms>                  [configured only]
  i, s  idle_ms (0: never forgotten) and shadow (1: observe only)       [configured only]
  y     the stored PENALTY, <ms>:<max_ms>                               [configured only]
  q     the limits of the last write (as p), on a key without p: what RL.SETTLE settles
        under and what the key's expiry is computed from
  h     open holds of reservations, <id>:<estimate>:<at_ms>:<expires_at_ms> joined by "|"
  b     the block, <until_ms>:<penalty level> (kept after it ends: the next penalty
        within one window of that end doubles)
  n     the last id issued (reservations and leases share the sequence)
A key without p expires, with PEXPIREAT, at the first ms every limit is empty, every hold
and lease expired and the block over, as the module's keys do. A configured key does not
expire unless i > 0 (then at the latest of that instant and idle_ms after its last write).

ARGV[1]  the operation; ARGV[2] now_ms: "" reads the server clock (TIME). A number is used as
         the current Unix ms instead: ONLY for tests that replay traces at exact instants; an
         application passes "" (both clients do).
A LIMIT is 4 arguments: kind ("gcra", "sliding" or "concurrency"), limit, window_ms, burst
("": the limit; SLIDING and CONCURRENCY take no burst, so "" only). A policy is 1 to 4 limits
in a row, plus at most one PENALTY group anywhere after the first limit, also 4 arguments:
"penalty", ms, max_ms ("": ms, no escalation), "". Ids are integers below 2^53.

  check   ARGV[3] cost, ARGV[4] "" or "withpolicy", ARGV[5..] the inline policy (0 limits:
          none). Decides and counts like RL.THROTTLE. Reply, as RL.THROTTLE's RESP2 array:
            {allowed 1/0, limit, remaining, retry_after_ms (-1: allowed or never), reset_after_ms}
          plus binding (0-based) when the policy has several limits; with "withpolicy"
          always 8 fields: ..., binding, source ("stored"/"inline"), limits (one
          {kind, limit, window_ms, burst} per limit: the enforced policy). A key whose
          policy has a CONCURRENCY limit is refused (take a lease with acquire).
  peek    the same arguments and reply; counts nothing, writes nothing. On a key with a
          CONCURRENCY limit: the answer a lease of that cost would get.
  reserve ARGV[3] estimate, ARGV[4] hold_ms ("": 300000), ARGV[5..] the inline policy.
          Decided and counted as check with cost = estimate; when allowed it also records a
          hold {id, estimate, now, now + hold_ms}. At most 64 open holds per key. Reply, as
          RL.RESERVE's RESP2 array, always 7 fields:
            {allowed, limit, remaining, retry_after_ms, reset_after_ms, binding, reservation}
          reservation the hold's id, nil when denied.
  settle  ARGV[3] reservation, ARGV[4] actual (0..10^9) -> integer: units charged (positive)
          or given back (negative) on the key's rate limits, under its stored policy (else
          q). The hold must be open, else the error "ERR unknown reservation: ...".
  refund  ARGV[3] n, ARGV[4] "", ARGV[5..] the inline policy -> integer: the most units any
          rate limit gave back (0: nothing changed, nothing written).
  acquire ARGV[3] cost, ARGV[4] "", ARGV[5..] the inline policy. Decided over every limit;
          when allowed each CONCURRENCY limit records a lease {id, cost, now + its window_ms}
          (one id for all) and each rate limit counts. Reply: 7 fields as reserve, the 7th the
          lease (nil when denied, or when the policy has no CONCURRENCY limit).
  release ARGV[3] lease -> 1 if it was held (now gone from every CONCURRENCY limit), else 0.
  renew   ARGV[3] lease, ARGV[4] ms (1..4294967295) -> 1 if held (it now expires at now + ms),
          else 0.
  block   ARGV[3] ms (1..10^12) -> "OK": blocked until now + ms, whatever was there.
  unblock -> 1 if the key was blocked (the block and its level are forgotten), else 0.
  config  ARGV[3] idle_ms ("" or 0: none), ARGV[4] shadow ("1" or "0"), ARGV[5..] the policy
          (its PENALTY group stored too). -> "OK". Keeps the usage (a limit that changes
          between GCRA and SLIDING carries it over as the module does; to or from CONCURRENCY
          starts empty; a limit added at the end starts empty), the holds, the block and the
          id sequence.
  reset   -> ms of backlog forgotten. A key without p is deleted; a configured one loses its
          usage, holds, leases and block, and keeps its policy and id sequence.
  info    -> RL.INFO's RESP2 flat list of names and values (with `kind` and `limits` for a
          key that is not one GCRA limit; a CONCURRENCY item adds `held` and
          `next_expiry_ms`), then blocked_ms, penalty_level, holds, held,
          next_hold_expiry_ms (nil: none) and leases; or nil for an absent key.
  export  -> nil for an absent key; else {configured 1/0, idle_ms, shadow 1/0, limits,
          penalty} with limits as in check's withpolicy reply (empty for a key without p)
          and penalty {ms, max_ms} or {}, and DELETES the key: a client that finds the module
          loaded moves a configured key to RL.CONFIG (usage, holds, leases and blocks are not
          carried: at most one window of usage is forgotten).

Policy precedence: the key's stored policy, else the call's inline one, else the error
"no rate limit". There is no server default (rl.default-limit) and no rl.scale-percent here.

Why the bounds. Lua 5.1 numbers are doubles, exact only for integers up to 2^53. A GCRA
limit is decided in units of 1/limit ms, relative to now (a backlog, never an absolute instant
times the limit), with whole ms and the fraction of a ms kept apart; every product is then at
most burst * window_ms plus a limit, or frac * limit when a changed limit converts a stored
fraction. So a GCRA limit must have
    limit <= 2^26 (67,108,864)   and   burst * window_ms <= 2^51 (2,251,799,813,685,248)
(1,000 per second with burst 1,000 is 10^6; a million per day is 8.64*10^13); the script
refuses others before any decision. SLIDING and CONCURRENCY limits (<= 1000 per window <=
2^32-1 ms) always fit. Ids are now_ms * 1000 and up: below 2^53 until the year 2255.
The Lua functions and Redis commands it calls are listed in clients/README.md ("What it
relies on"); tests/test_lua_fallback_env.py checks the list against this file.
--]]

local MAX_LIMIT, MAX_WINDOW, MAX_BURST, MAX_COST = 1e9, 1e12, 1e9, 1e9
local MAX_DRAIN_MS, MAX_PENALTY_MS, MAX_BLOCK_MS = 1e13, 1e12, 1e12
local LUA_MAX_LIMIT, LUA_MAX_TOLERANCE = 67108864, 2251799813685248
local MAX_COUNTED, MAX_COUNTED_WINDOW = 1000, 4294967295
local MAX_HOLD_MS, DEFAULT_HOLD_MS, MAX_HOLDS = 86400000, 300000, 64
local MAX_ID = 9007199254740991
local MAX_LIMITS = 4
local VERSION = '1'
local FOREIGN = 'ERR key is not a rate limit of this client (it holds other data)'
local NO_POLICY = 'ERR no rate limit for key: RL.CONFIG it, pass LIMIT and WINDOW, or set rl.default-limit'
local UNKNOWN_RESERVATION = 'ERR unknown reservation: it expired, was settled, or was never issued'
local TOO_MANY_HOLDS = 'ERR too many open reservations: a key holds at most 64 (settle them or let them expire)'
local LEASED = 'ERR this key has a CONCURRENCY limit: take a lease with RL.ACQUIRE and give it back with RL.RELEASE'
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

-- An integer as text: `%d` formats a C long, exact for every integer below 2^53 (and far
-- cheaper than `%.0f`, which goes through the floating-point printer).
local function str(n) return string.format('%d', n) end

-- Policies ------------------------------------------------------------------------------

local RANGE = {
  limit = 'ERR limit must be an integer from 1 to 1000000000',
  window = 'ERR window_ms must be an integer from 1 to 1000000000000',
  burst = 'ERR burst must be an integer from 1 to 1000000000',
}
local COUNTED = {s = 'SLIDING', c = 'CONCURRENCY'}
local KIND_NAMES = {g = 'gcra', s = 'sliding', c = 'concurrency'}
local KIND_OF = {gcra = 'g', g = 'g', sliding = 's', s = 's', concurrency = 'c', c = 'c'}

-- One limit from (kind, limit, window_ms, burst) strings, validated with the module's words.
local function limit_of(kind, l, w, b)
  local k = KIND_OF[type(kind) == 'string' and kind:lower() or '']
  local lt, wt = l, w  -- the digits as given: p's text for this limit (encode_limits)
  if k == nil then
    fail('ERR unknown limit kind: a limit is GCRA (the default), SLIDING or CONCURRENCY')
  end
  local name = COUNTED[k]
  if name then
    l = int(l, 0, MAX_LIMIT, RANGE.limit)
    if l == 0 then fail(RANGE.limit) end
    if l > MAX_COUNTED then
      fail('ERR a ' .. name .. ' limit must be an integer from 1 to 1000'
           .. (k == 's' and ' (use GCRA for more requests per window)' or ''))
    end
    if type(w) ~= 'string' or not w:match('^%d+$') or #w > 16 or tonumber(w) == 0 then fail(RANGE.window) end
    w = tonumber(w)
    if w > MAX_WINDOW then fail(RANGE.window) end
    if w > MAX_COUNTED_WINDOW then
      fail('ERR a ' .. name .. ' window_ms must be an integer from 1 to 4294967295 (about 49 days)')
    end
    if b ~= nil and b ~= '' and b ~= str(l) then
      fail('ERR BURST applies to GCRA limits only: a ' .. name .. ' limit\'s burst is its limit')
    end
    return {k = k, l = l, w = w, b = l, text = k .. ':' .. lt .. ':' .. wt}
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
  return {k = 'g', l = l, w = w, b = b, text = 'g:' .. lt .. ':' .. wt .. ':' .. str(b)}
end

-- The limits (and PENALTY) given as ARGV[first..], 4 arguments each; nil when there are none.
local function limits_from_argv(first)
  local n = #ARGV - first + 1
  if n <= 0 then return nil, nil end
  if n % 4 ~= 0 then fail('ERR syntax error: a limit is kind, limit, window_ms, burst') end
  local out, penalty = {}, nil
  for i = first, #ARGV, 4 do
    if ARGV[i] == 'penalty' then
      if #out == 0 or penalty ~= nil then fail('ERR syntax error: one PENALTY, after a limit') end
      local ms = int(ARGV[i + 1], 1, MAX_PENALTY_MS, 'ERR PENALTY ms must be an integer from 1 to 1000000000000')
      local max = ms
      if ARGV[i + 2] ~= '' then
        max = int(ARGV[i + 2], ms, MAX_PENALTY_MS, 'ERR PENALTY MAX must be an integer from ms to 1000000000000')
      end
      penalty = {ms = ms, max = max}
    else
      if #out == MAX_LIMITS then fail('ERR too many limits: a key holds at most 4 (joined by AND)') end
      out[#out + 1] = limit_of(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    end
  end
  return out, penalty
end

local function encode_limits(limits)
  local parts = {}
  for i, p in ipairs(limits) do parts[i] = p.text end
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

local function has_leases(limits)
  for _, p in ipairs(limits) do
    if p.k == 'c' then return true end
  end
  return false
end

-- Usage: a GCRA TAT {t, f, d}, a SLIDING log {{at, count}, ...} or leases {{id, cost, exp}, ...}

local function empty_usage(p)
  if p.k == 'g' then return {k = 'g', t = 0, f = 0, d = 1} end
  if p.k == 's' then return {k = 's', log = {}} end
  return {k = 'c', leases = {}}
end

local function encode_usage(usage)
  local parts = {}
  for i, u in ipairs(usage) do
    if u.k == 'g' then
      parts[i] = 'g:' .. str(u.t) .. ':' .. str(u.f) .. ':' .. str(u.d)
    elseif u.k == 's' then
      local s = {'s'}
      for _, e in ipairs(u.log) do s[#s + 1] = str(e[1]) .. ':' .. str(e[2]) end
      parts[i] = table.concat(s, ':')
    else
      local s = {'c'}
      for _, x in ipairs(u.leases) do s[#s + 1] = str(x[1]) .. ':' .. str(x[2]) .. ':' .. str(x[3]) end
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
    elseif kind == 'c' then
      local leases = {}
      for id, c, e in item:sub(3):gmatch('(%d+):(%d+):(%d+)') do
        leases[#leases + 1] = {tonumber(id), tonumber(c), tonumber(e)}
      end
      out[#out + 1] = {k = 'c', leases = leases}
    else
      local log = {}
      for at, c in item:sub(3):gmatch('(%d+):(%d+)') do log[#log + 1] = {tonumber(at), tonumber(c)} end
      out[#out + 1] = {k = 's', log = log}
    end
  end
  return out
end

-- Each kind offers the same functions to decide (limits.rs; the Python client's limits.py):
-- repair, fits, counted, remaining, reset, retry, empty_at, refund, charge. Redis runs the
-- whole script on every call, and each function it defines costs about 1,200 instructions
-- (a closure made and collected), so a kind's functions are made only when a limit of that
-- kind is met: kind(k).
local BUILD = {}

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

BUILD.g = function() return {
  repair = function(p, u, now)
    local b, clamped = backlog(p, u, now)
    if clamped then return tat_at(p, now, b), true end
    return u, false
  end,
  fits = function(p, u, now, cost)
    return cost <= p.b and backlog(p, u, now) + cost * p.w <= p.b * p.w
  end,
  counted = function(p, u, now, cost) return tat_at(p, now, backlog(p, u, now) + cost * p.w) end,
  remaining = function(p, u, now) return fdiv(math.max(p.b * p.w - backlog(p, u, now), 0), p.w) end,
  reset = function(p, u, now) return cdiv(backlog(p, u, now), p.l) end,
  retry = function(p, u, now, cost)
    return math.max(cdiv(backlog(p, u, now) + cost * p.w - p.b * p.w, p.l), 1)
  end,
  empty_at = function(p, u) return gcra_empty_at(u) end,
  -- TAT := max(now, TAT - n*T); given back min(n, ceil((TAT - now) / T)). n*T is formed only
  -- when n is below the bucket, so it stays exact.
  refund = function(p, u, now, n)
    local b = backlog(p, u, now)
    if b == 0 then return u, 0 end
    local owed = cdiv(b, p.w)
    if n >= owed then return tat_at(p, now, 0), owed end
    return tat_at(p, now, b - n * p.w), n
  end,
  -- TAT := min(max(TAT, now) + units*T, now + burst*T): a debt of at most one full bucket.
  charge = function(p, u, now, units)
    local tol = p.b * p.w
    if units >= p.b then return tat_at(p, now, tol) end
    return tat_at(p, now, math.min(backlog(p, u, now) + units * p.w, tol))
  end,
} end

-- SLIDING (sliding.rs) --------------------------------------------------------------------

BUILD.s = function()
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

-- Merges equal adjacent instants (entries read as now after a clock step), dropping empty ones.
local function merged(parts)
  local out = {}
  for _, e in ipairs(parts) do
    local last = out[#out]
    if e[2] == 0 then
      -- nothing left at this instant
    elseif last ~= nil and last[1] == e[1] then
      last[2] = last[2] + e[2]
    else
      out[#out + 1] = {e[1], e[2]}
    end
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

return {
  repair = function(p, u, now)
    local log, moved = clamp_future(u.log, now)
    return {k = 's', log = log}, moved
  end,
  fits = function(p, u, now, cost) return cost <= p.l and used(p, u.log, now) + cost <= p.l end,
  counted = function(p, u, now, cost) return {k = 's', log = record(p, u.log, now, cost)} end,
  remaining = function(p, u, now) return math.max(p.l - used(p, u.log, now), 0) end,
  reset = function(p, u, now) return log_empty_at(p, u.log, now) - now end,
  retry = function(p, u, now, cost)
    local l = live(p, u.log, now)
    local rest = 0
    for _, e in ipairs(l) do rest = rest + e[2] end
    for _, e in ipairs(l) do
      rest = rest - e[2]
      if rest + cost <= p.l then return math.max(e[1] + p.w - now, 1) end
    end
    return 1
  end,
  empty_at = function(p, u, now) return log_empty_at(p, u.log, now) end,
  -- n units off the most recent live entries first; with `at` (a settle), only off the
  -- entry recorded at that instant: never another request's.
  refund = function(p, u, now, n, at)
    local entries = merged(live(p, u.log, now))
    local given = 0
    for i = #entries, 1, -1 do
      local e = entries[i]
      if given < n and (at == nil or e[1] == math.min(at, now)) then
        local take = math.min(n - given, e[2])
        e[2] = e[2] - take
        given = given + take
      end
    end
    if given == 0 then return u, 0 end
    return {k = 's', log = merged(entries)}, given
  end,
  -- units recorded at now, then at most `limit` live: the oldest excess dropped.
  charge = function(p, u, now, units)
    local entries = record(p, u.log, now, units)
    local excess = -p.l
    for _, e in ipairs(entries) do excess = excess + e[2] end
    for _, e in ipairs(entries) do
      local take = math.min(math.max(excess, 0), e[2])
      e[2] = e[2] - take
      excess = excess - take
    end
    return {k = 's', log = merged(entries)}
  end,
} end

-- CONCURRENCY: leases {id, cost, expires_at_ms}, live while now < expires_at_ms ----------

BUILD.c = function()
local function live_leases(u, now)
  local out = {}
  for _, x in ipairs(u.leases) do
    if x[3] > now then out[#out + 1] = x end
  end
  return out
end

local function held(u, now)
  local n = 0
  for _, x in ipairs(live_leases(u, now)) do n = n + x[2] end
  return n
end

return {
  live = live_leases,
  held = held,
  repair = function(p, u) return u, false end,
  fits = function(p, u, now, cost) return cost <= p.l and held(u, now) + cost <= p.l end,
  counted = function(p, u, now, cost, id)
    local leases = live_leases(u, now)
    leases[#leases + 1] = {id, cost, now + p.w}
    return {k = 'c', leases = leases}
  end,
  remaining = function(p, u, now) return math.max(p.l - held(u, now), 0) end,
  reset = function(p, u, now)
    local last = now
    for _, x in ipairs(live_leases(u, now)) do last = math.max(last, x[3]) end
    return last - now
  end,
  -- Until enough held leases expire for `cost` to fit (for 1: the earliest expiry).
  retry = function(p, u, now, cost)
    local leases = live_leases(u, now)
    table.sort(leases, function(a, b) return a[3] < b[3] end)
    local left = held(u, now)
    for _, x in ipairs(leases) do
      left = left - x[2]
      if left + cost <= p.l then return math.max(x[3] - now, 1) end
    end
    return 1
  end,
  empty_at = function(p, u, now)
    local last = now
    for _, x in ipairs(live_leases(u, now)) do last = math.max(last, x[3]) end
    return last
  end,
  refund = function(p, u) return u, 0 end,  -- a lease is given back by release
  charge = function(p, u) return u end,     -- a settle charges rate limits only
} end

local KINDS = {}

local function kind(k)
  local t = KINDS[k]
  if t == nil then
    t = BUILD[k]()
    KINDS[k] = t
  end
  return t
end

-- Changing a limit's kind keeps usage as time (limits.rs, Usage::carried_to) ---------------

local function carried_to(u, p, now)
  if u.k == p.k then return u end
  if u.k == 'c' or p.k == 'c' then return empty_usage(p) end  -- a new contract: empty
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
  for i, p in ipairs(limits) do at = math.max(at, kind(p.k).empty_at(p, usage[i], now)) end
  return at
end

-- One request against a set (limits.rs, decide) -------------------------------------------

-- Returns the outcome {allowed, binding, limit, remaining, retry, reset, each} and the new
-- usage (nil when nothing is to be written: denied without a clock repair). When allowed,
-- each CONCURRENCY limit records a lease `lease_id`.
local function decide(limits, usage, now, cost, lease_id)
  usage = align(limits, usage, now)
  local repaired = false
  for i, p in ipairs(limits) do
    local u, moved = kind(p.k).repair(p, usage[i], now)
    usage[i], repaired = u, repaired or moved
  end
  local admits, allowed = {}, true
  for i, p in ipairs(limits) do
    admits[i] = kind(p.k).fits(p, usage[i], now, cost)
    allowed = allowed and admits[i]
  end
  local each, new = {}, {}
  for i, p in ipairs(limits) do
    local n = usage[i]
    if allowed then n = kind(p.k).counted(p, n, now, cost, lease_id) end
    each[i] = {limit = p.b, remaining = kind(p.k).remaining(p, n, now), reset = kind(p.k).reset(p, n, now)}
    if not admits[i] and cost <= p.b then each[i].retry = kind(p.k).retry(p, usage[i], now, cost) end
    new[i] = n
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

local FIELDS = {'_rl', 'u', 'p', 'i', 's', 'y', 'q', 'h', 'b', 'n'}

local function open_holds(st, now)
  local out = {}
  for _, h in ipairs(st.holds) do
    if h.exp > now then out[#out + 1] = h end
  end
  return out
end

-- The key's state, or nil when absent; refuses a key that is not ours.
local function load(key)
  local h = redis.pcall('HMGET', key, unpack(FIELDS))
  if type(h) ~= 'table' or h.err then fail(FOREIGN) end
  if h[1] == false then
    if redis.call('EXISTS', key) == 1 then fail(FOREIGN) end
    return nil
  end
  if h[1] ~= VERSION then fail(FOREIGN) end
  local st = {usage = decode_usage(h[2]), idle = tonumber(h[4]) or 0, shadow = h[5] == '1',
              holds = {}, last = tonumber(h[10]), present = {}}
  for id, e, at, exp in (h[8] or ''):gmatch('(%d+):(%d+):(%d+):(%d+)') do
    st.holds[#st.holds + 1] = {id = tonumber(id), est = tonumber(e), at = tonumber(at), exp = tonumber(exp)}
  end
  for i = 6, #FIELDS do st.present[FIELDS[i]] = h[i] ~= false end
  if h[3] then st.limits = decode_limits(h[3]) end
  if h[6] then
    local ms, max = h[6]:match('^(%d+):(%d+)$')
    if ms == nil then fail(FOREIGN) end
    st.penalty = {ms = tonumber(ms), max = tonumber(max)}
  end
  st.q_text = h[7] or nil  -- decoded only when a call without a policy needs it (q_limits)
  if h[9] then
    local untl, level = h[9]:match('^(%d+):(%d+)$')
    if untl == nil then fail(FOREIGN) end
    st.block = {untl = tonumber(untl), level = tonumber(level)}
  end
  return st
end

-- The limits a key without a stored policy was last written under (field q), or nil.
local function q_limits(st)
  if st.q == nil and st.q_text then st.q = decode_limits(st.q_text) end
  return st.q
end

local function fresh()
  return {usage = {}, idle = 0, shadow = false, holds = {}, present = {}}
end

local function blocked_until(st, now)
  if st ~= nil and st.block ~= nil and st.block.untl > now then return st.block.untl end
  return nil
end

local function next_id(st, now)
  if st == nil or st.last == nil then return now * 1000 end
  return math.max(st.last + 1, now * 1000)
end

-- The first ms from which the key holds nothing that matters: every limit empty (`limits`:
-- the policy the usage is read under; nil: only what the usage tells alone, and the key's
-- current expiry for a SLIDING log), every hold and lease expired, the block over.
local function empty_at_key(key, st, limits, now)
  local at = now
  if limits ~= nil then
    at = empty_at_all(limits, align(limits, st.usage, now), now)
  else
    for _, u in ipairs(st.usage) do
      if u.k == 'g' then at = math.max(at, gcra_empty_at(u))
      elseif u.k == 'c' then at = math.max(at, kind('c').empty_at(nil, u, now))
      else at = math.max(at, redis.call('PEXPIRETIME', key)) end
    end
  end
  for _, h in ipairs(st.holds) do
    if h.exp > now then at = math.max(at, h.exp) end
  end
  return math.max(at, blocked_until(st, now) or now)
end

-- The one write: every field of the state, the expired holds pruned, and the expiry.
-- `limits`: the policy this write was decided under (nil for release, renew, block...).
local function field(st, set, del, name, value)
  if value ~= nil then
    set[#set + 1], set[#set + 2] = name, value
  elseif st.present[name] then
    del[#del + 1] = name
  end
end

local function save(key, st, limits, now)
  local set, del = {'_rl', VERSION, 'u', encode_usage(st.usage)}, {}
  local holds = nil
  if #st.holds > 0 then
    st.holds = open_holds(st, now)
    local parts = {}
    for i, h in ipairs(st.holds) do parts[i] = str(h.id) .. ':' .. str(h.est) .. ':' .. str(h.at) .. ':' .. str(h.exp) end
    if #parts > 0 then holds = table.concat(parts, '|') end
  end
  field(st, set, del, 'h', holds)
  field(st, set, del, 'b', st.block and (str(st.block.untl) .. ':' .. str(st.block.level)) or nil)
  field(st, set, del, 'n', st.last and str(st.last) or nil)
  if st.limits == nil and limits ~= nil then
    local q = encode_limits(limits)
    if q ~= st.q_text then field(st, set, del, 'q', q) end
    st.q, st.q_text = limits, q
  end
  redis.call('HSET', key, unpack(set))
  if #del > 0 then redis.call('HDEL', key, unpack(del)) end
  if st.limits == nil then
    redis.call('PEXPIREAT', key, str(empty_at_key(key, st, q_limits(st), now)))
  elseif st.idle > 0 then
    redis.call('PEXPIREAT', key, str(math.max(empty_at_key(key, st, st.limits, now), now + st.idle)))
  end
end

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return int(arg, 1, 2^52, 'ERR now_ms must be an integer') end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function policy_reply(limits)
  local out = {}
  for i, p in ipairs(limits) do out[i] = {KIND_NAMES[p.k], p.l, p.w, p.b} end
  return out
end

-- The key's policy: stored, else the call's inline one, else the error.
local function resolve(st, inline, inline_penalty)
  if st ~= nil and st.limits ~= nil then return st.limits, st.penalty, 'stored' end
  if inline ~= nil then return inline, inline_penalty, 'inline' end
  return fail(NO_POLICY)
end


-- Operations ------------------------------------------------------------------------------

-- check, peek, reserve and acquire: one decision, then what the mode records.
local function decision(key, now, mode)
  local cost = int(ARGV[3], 1, MAX_COST, mode == 'reserve' and 'ERR estimate must be an integer from 1 to 1000000000'
                                                            or 'ERR cost must be an integer from 1 to 1000000000')
  local hold_ms = DEFAULT_HOLD_MS
  if mode == 'reserve' and ARGV[4] ~= '' then
    hold_ms = int(ARGV[4], 1, MAX_HOLD_MS, 'ERR HOLD must be an integer from 1 to 86400000')
  end
  local inline, inline_penalty = limits_from_argv(5)
  local st = load(key)
  local limits, penalty, source = resolve(st, inline, inline_penalty)
  local leased = has_leases(limits)
  if leased and (mode == 'check' or mode == 'reserve') then fail(LEASED) end
  if mode == 'reserve' and st ~= nil and #open_holds(st, now) >= MAX_HOLDS then fail(TOO_MANY_HOLDS) end
  local lease_id = nil
  if mode == 'acquire' and leased then lease_id = next_id(st, now) end
  local o, new = decide(limits, st and st.usage or {}, now, cost, lease_id or 0)
  local shadow = source == 'stored' and st.shadow
  local untl = blocked_until(st, now)
  local id = false
  local allowed, remaining, retry = o.allowed or shadow, o.remaining, o.retry
  if shadow then retry = -1 end
  if untl ~= nil then
    -- Blocked: the decision's numbers, denied; counts nothing, extends nothing.
    allowed, remaining = shadow, 0
    if not shadow then retry = untl - now end
  elseif mode ~= 'peek' and (new ~= nil or (not o.allowed and not shadow and penalty ~= nil)) then
    st = st or fresh()
    if new ~= nil then st.usage = new end
    if o.allowed and mode == 'reserve' then
      id = next_id(st, now)
      st.holds = open_holds(st, now)
      st.holds[#st.holds + 1] = {id = id, est = cost, at = now, exp = now + hold_ms}
      st.last = id
    elseif o.allowed and lease_id ~= nil then
      id, st.last = lease_id, lease_id
    elseif not o.allowed and not shadow and penalty ~= nil then
      -- A denial of a key that is not blocked blocks it: ms * 2^level, at most max; the
      -- level one more than the last block's when that ended less than one window ago.
      local level, longest = 0, 0
      for _, p in ipairs(limits) do longest = math.max(longest, p.w) end
      if st.block ~= nil and now - st.block.untl < longest then level = st.block.level + 1 end
      st.block = {untl = now + math.min(penalty.ms * 2 ^ math.min(level, 64), penalty.max), level = level}
    end
    save(key, st, limits, now)
  end
  local reply = {allowed and 1 or 0, o.limit, remaining, retry, o.reset}
  if mode == 'reserve' or mode == 'acquire' then
    reply[6], reply[7] = o.binding, id
  elseif ARGV[4] == 'withpolicy' then
    reply[6], reply[7], reply[8] = o.binding, source, policy_reply(limits)
  elseif #limits > 1 then
    reply[6] = o.binding
  end
  return reply
end

-- Every operation but a decision: made only when one of them is called (see BUILD).
local function admin_ops()
  -- Every rate limit gives back n (at: a settle's own SLIDING entry), or (charge) is charged
  -- n: the usage, and the most units any limit gave back.
  local function adjust_all(limits, usage, now, charge, n, at)
    usage = align(limits, usage, now)
    local most = 0
    for i, p in ipairs(limits) do
      if charge then
        usage[i] = kind(p.k).charge(p, usage[i], now, n)
      else
        local u, given = kind(p.k).refund(p, usage[i], now, n, at)
        usage[i], most = u, math.max(most, given)
      end
    end
    return usage, most
  end

  local function id_arg(s, name)
    return int(s, 1, MAX_ID, 'ERR ' .. name .. ' must be an integer id')
  end

  local function refund(key, now)
    local n = int(ARGV[3], 1, MAX_COST, 'ERR n must be an integer from 1 to 1000000000')
    local inline, inline_penalty = limits_from_argv(5)
    local st = load(key)
    local limits = resolve(st, inline, inline_penalty)
    if st == nil then return 0 end
    local usage, given = adjust_all(limits, st.usage, now, false, n)
    if given == 0 then return 0 end
    st.usage = usage
    save(key, st, limits, now)
    return given
  end

  local function settle(key, now)
    local id = id_arg(ARGV[3], 'reservation')
    local actual = int(ARGV[4], 0, MAX_COST, 'ERR actual must be an integer from 0 to 1000000000')
    local st = load(key)
    if st == nil then fail(UNKNOWN_RESERVATION) end
    local hold, rest = nil, {}
    for _, h in ipairs(open_holds(st, now)) do
      if h.id == id then hold = h else rest[#rest + 1] = h end
    end
    if hold == nil then fail(UNKNOWN_RESERVATION) end
    local limits = st.limits or q_limits(st)
    local d = actual - hold.est
    if d ~= 0 and limits == nil then fail(NO_POLICY) end
    local reply = d
    if d < 0 then
      local given
      st.usage, given = adjust_all(limits, st.usage, now, false, -d, hold.at)
      reply = -given
    elseif d > 0 then
      st.usage = adjust_all(limits, st.usage, now, true, d)
    end
    st.holds = rest
    save(key, st, nil, now)
    return reply
  end

  -- 1 if the lease was held by some CONCURRENCY limit (and is changed in every one), else 0.
  local function leases_op(key, now, what, id, ms)
    local live_leases = kind('c').live
    -- release and renew, on one CONCURRENCY limit's leases: whether the lease was held there.
    local changes = {
    release = function(u, now, id)
      local keep, found = {}, false
      for _, x in ipairs(live_leases(u, now)) do
        if x[1] == id then found = true else keep[#keep + 1] = x end
      end
      u.leases = keep
      return found
    end,
    renew = function(u, now, id, ms)
      local found = false
      u.leases = live_leases(u, now)
      for _, x in ipairs(u.leases) do
        if x[1] == id then x[3], found = now + ms, true end
      end
      return found
    end,
    }
    local st = load(key)
    if st == nil then return 0 end
    local hit = false
    for _, u in ipairs(st.usage) do
      if u.k == 'c' and changes[what](u, now, id, ms) then hit = true end
    end
    if not hit then return 0 end
    save(key, st, nil, now)
    return 1
  end

  local function release(key, now)
    return leases_op(key, now, 'release', id_arg(ARGV[3], 'lease'))
  end

  local function renew(key, now)
    local id = id_arg(ARGV[3], 'lease')
    return leases_op(key, now, 'renew', id, int(ARGV[4], 1, MAX_COUNTED_WINDOW, 'ERR ms must be an integer from 1 to 4294967295'))
  end

  local function block(key, now)
    local ms = int(ARGV[3], 1, MAX_BLOCK_MS, 'ERR ms must be an integer from 1 to 1000000000000')
    local st = load(key) or fresh()
    st.block = {untl = now + ms, level = st.block and st.block.level or 0}
    save(key, st, nil, now)
    return {ok = 'OK'}
  end

  local function unblock(key, now)
    local st = load(key)
    if blocked_until(st, now) == nil then return 0 end
    st.block = nil
    save(key, st, nil, now)
    return 1
  end

  local function config(key, now)
    local idle = ARGV[3]
    if idle == nil or idle == '' then idle = 0 else
      idle = int(idle, 0, MAX_WINDOW, 'ERR idle_ms must be an integer from 1 to 1000000000000')
    end
    local shadow = ARGV[4] == '1' and '1' or '0'
    local limits, penalty = limits_from_argv(5)
    if limits == nil then fail('ERR wrong number of arguments for \'rl.config\' command') end
    local st = load(key) or fresh()
    st.usage, st.limits, st.idle, st.penalty = align(limits, st.usage, now), limits, idle, penalty
    local y = penalty and (str(penalty.ms) .. ':' .. str(penalty.max)) or nil
    redis.call('HSET', key, '_rl', VERSION, 'p', encode_limits(limits), 'i', str(idle), 's', shadow)
    if y then redis.call('HSET', key, 'y', y) elseif st.present.y then redis.call('HDEL', key, 'y') end
    if st.present.q then redis.call('HDEL', key, 'q') end
    st.present.q = false
    if idle == 0 then redis.call('PERSIST', key) end -- configuration does not expire without IDLE
    save(key, st, limits, now)
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
    st.usage, st.holds, st.block = empty, {}, nil
    save(key, st, st.limits, now)
    return forgotten
  end

  local function info(key, now)
    local live_leases, held = kind('c').live, kind('c').held
    -- RL.INFO's fields of issues 19 and 20.
    local function key_fields(st, now)
      local holds, held_units, next_exp = open_holds(st, now), 0, false
      for _, h in ipairs(holds) do
        held_units = held_units + h.est
        if next_exp == false or h.exp - now < next_exp then next_exp = h.exp - now end
      end
      local ids, leases = {}, 0
      for _, u in ipairs(st.usage) do
        if u.k == 'c' then
          for _, x in ipairs(live_leases(u, now)) do
            if not ids[x[1]] then ids[x[1]], leases = true, leases + 1 end
          end
        end
      end
      local untl = blocked_until(st, now)
      return {'blocked_ms', untl and (untl - now) or 0, 'penalty_level', st.block and st.block.level or 0,
              'holds', #holds, 'held', held_units, 'next_hold_expiry_ms', next_exp, 'leases', leases}
    end

    local function append(out, items)
      for _, v in ipairs(items) do out[#out + 1] = v end
      return out
    end
    local st = load(key)
    if st == nil then return false end
    local limits, usage = st.limits, st.usage
    local set = (limits ~= nil and (#limits > 1 or limits[1].k ~= 'g'))
      or (limits == nil and (#usage > 1 or (usage[1] ~= nil and usage[1].k ~= 'g')))
    if limits == nil then
      local reset_after = 0
      if not set and usage[1] ~= nil then reset_after = math.max(gcra_empty_at(usage[1]) - now, 0) end
      local out = {'source', 'none', 'limit', false, 'window_ms', false, 'burst', false, 'idle_ms', false,
                   'shadow', false, 'scale_percent', 100, 'remaining', false, 'reset_after_ms', reset_after}
      if set then append(out, {'kind', false, 'limits', false}) end
      return append(out, key_fields(st, now))
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
        each[i] = {'kind', KIND_NAMES[p.k], 'limit', p.l, 'window_ms', p.w, 'burst', p.b,
                   'remaining', o.each[i].remaining, 'reset_after_ms', o.each[i].reset}
        if p.k == 'c' then
          local next_exp = false
          for _, x in ipairs(live_leases(usage[i], now)) do
            if next_exp == false or x[3] - now < next_exp then next_exp = x[3] - now end
          end
          append(each[i], {'held', held(usage[i], now), 'next_expiry_ms', next_exp})
        end
      end
      append(out, {'kind', KIND_NAMES[first.k], 'limits', each})
    end
    return append(out, key_fields(st, now))
  end

  local function export(key, now)
    local st = load(key)
    if st == nil then return false end
    redis.call('DEL', key)
    if st.limits == nil then return {0, 0, 0, {}, {}} end
    local penalty = st.penalty and {st.penalty.ms, st.penalty.max} or {}
    return {1, st.idle, st.shadow and 1 or 0, policy_reply(st.limits), penalty}
  end

  return {
    settle = settle,
    refund = refund,
    release = release,
    renew = renew,
    block = block,
    unblock = unblock,
    config = config,
    reset = reset,
    info = info,
    export = export,
  }
end

local DECISIONS = {check = true, peek = true, reserve = true, acquire = true}

local function main()
  local op = ARGV[1]
  if DECISIONS[op] then return decision(KEYS[1], now_ms(ARGV[2]), op) end
  local ops = admin_ops()
  if ops[op] == nil then fail('ERR ratelimit.lua: unknown operation') end
  return ops[op](KEYS[1], now_ms(ARGV[2]))
end

-- Errors go back as plain error replies with the module's wording (error() would append the
-- script's sha and line). Every write happens after every check, so a failed call changes
-- nothing.
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' and res.err then return redis.error_reply(res.err) end
if type(res) == 'string' and res:match('^%u+ ') then return redis.error_reply(res) end
error(res)
