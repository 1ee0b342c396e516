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
          S:<window_ms>[:<at_ms>:<count>]...   SLIDING: the log, (instant, requests) oldest
                                   first, and the window of the limit that recorded it (an
                                   entry counts while inside both that window and the
                                   reading limit's); `s[:<at_ms>:<count>]...`, a log written
                                   before logs kept their window, is read as window unknown
          c[:<id>:<cost>:<expires_at_ms>]...   CONCURRENCY: the leases, oldest first
  p     the stored policy (RL.CONFIG), limits joined by "|": g:<limit>:<window_ms>:<burst>,
        s:<limit>:<window_ms> or c:<limit>:<window_ms>                  [configured only]
  i, s  idle_ms (0: never forgotten) and shadow (1: observe only)       [configured only]
  y     the stored PENALTY, <ms>:<max_ms>                               [configured only]
  q     the limits of the last write (as p), on a key without p: what RL.SETTLE settles
        under
  x     the instant (ms) of an RL.CONFIG the usage has not been written under yet: u is kept
        as recorded and carried to p as of that instant on every read (issue 17's pending
        change), until the next write under p stores it in p's form
  h     open holds of reservations, <id>:<estimate>:<at_ms>:<expires_at_ms>[:<ends>] joined
        by "|", <ends> per limit the GCRA bucket's TAT right after the reserve as
        <ms>/<frac>/<den> (empty for other kinds) joined by ",": a settle never gives back
        units of its hold that already drained
  b     the block, <until_ms>:<penalty level> (kept after it ends: the next penalty
        within one window of that end doubles)
  n     the last id issued (reservations and leases share the sequence)
A key without p expires, with PEXPIREAT, at the first ms its usage as recorded is empty, every
hold and lease expired and the block over, as the module's keys do. A configured key does not
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
          (its PENALTY group stored too). -> "OK". Keeps the usage as recorded, read under
          the new policy as of now by the module's carry rules (only what is still live under
          the old limit then; to or from CONCURRENCY starts empty; a limit added at the end
          starts empty; a chain of changes within one ms reads as the last one alone), the
          holds, the block and the id sequence.
  reset   -> ms of backlog forgotten. A key without p is deleted; a configured one loses its
          usage, holds, leases and block, and keeps its policy and id sequence.
  info    -> RL.INFO's RESP2 flat list of names and values (with `kind` and `limits` for a
          key that is not one GCRA limit, or whose change is pending; a CONCURRENCY item adds
          `held` and `next_expiry_ms`), then blocked_ms, penalty_level, penalty_ms and
          penalty_max_ms (the stored PENALTY; nil: none), holds, held, next_hold_expiry_ms
          (nil: none) and leases; or nil for an absent key.
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
  if p.k == 's' then return {k = 's', log = {}, w = 0} end
  return {k = 'c', leases = {}}
end

local function encode_usage(usage)
  local parts = {}
  for i, u in ipairs(usage) do
    if u.k == 'g' then
      parts[i] = 'g:' .. str(u.t) .. ':' .. str(u.f) .. ':' .. str(u.d)
    elseif u.k == 's' then
      local s = {'s'}
      if #u.log > 0 and (u.w or 0) > 0 then s[1] = 'S:' .. str(u.w) end
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
      local log, w, rest = {}, 0, item:sub(3)
      if kind == 'S' then
        local wt, tail = item:match('^S:(%d+):?(.*)$')
        if wt == nil then fail(FOREIGN) end
        w, rest = tonumber(wt), tail
      end
      for at, c in rest:gmatch('(%d+):(%d+)') do log[#log + 1] = {tonumber(at), tonumber(c)} end
      if #log == 0 then w = 0 end
      out[#out + 1] = {k = 's', log = log, w = w}
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

-- The requests a SLIDING limit `p` admits in the backlog of TAT `u` from `from` (owed, not
-- yet empty), rounded up: ceil((u - from) * limit / window), exact. At least the limit when a
-- whole window is owed (the caller caps it there), so every product stays below 2^53.
local function gcra_requests_in(u, p, from)
  local m = u.t - from
  if m >= p.w then return p.l end
  local x = m * p.l
  local q = fdiv(x, p.w)
  local r = x - q * p.w
  -- + ceil((r + frac*limit/den) / window): the fraction's part as its floor and whether inexact
  local e = u.f * p.l
  local ef = fdiv(e, u.d)
  if ef * u.d ~= e then return q + fdiv(r + ef, p.w) + 1 end
  return q + cdiv(r + ef, p.w)
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
  own_empty_at = function(u) return gcra_empty_at(u) end,
  -- Under this (changed) GCRA limit from `at`: the same backlog as time, at most one full
  -- bucket of this limit from then.
  carry = function(p, u, at)
    local b, clamped = backlog(p, u, at)
    if clamped then return tat_at(p, at, b) end
    return u
  end,
  -- What is still owed at `at`, for a limit of another kind: until the TAT, or nil. A SLIDING
  -- limit reads it as the requests it admits in that time, rounded up (gcra_requests_in).
  export = function(u, at)
    if gcra_empty_at(u) <= at then return nil end
    return {what = 'until', tat = u}
  end,
  -- What another kind carried at `at`: n requests owed from then, T each, at most one full
  -- bucket; or the backlog of a GCRA limit (read as this limit's, clamped).
  import = function(p, carried, at)
    if carried == nil then return empty_usage(p) end
    if carried.what == 'requests' then return tat_at(p, at, math.min(carried.n * p.w, p.b * p.w)) end
    local b, clamped = backlog(p, carried.tat, at)
    if clamped then return tat_at(p, at, b) end
    return carried.tat
  end,
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
local function live(w, log, now)
  local out = {}
  for _, e in ipairs(log) do
    local at = math.min(e[1], now)
    if at + w > now then out[#out + 1] = {at, e[2]} end
  end
  return out
end

local function used(w, log, now)
  local n = 0
  for _, e in ipairs(live(w, log, now)) do n = n + e[2] end
  return n
end

local function log_empty_at(w, log, now)
  local l = live(w, log, now)
  if #l == 0 then return now end
  return l[#l][1] + w
end

-- The window the log's entries count in under `p`: its own, or the log's when shorter (a
-- request the old window had forgotten is never revived by a longer one).
local function cw(p, u)
  if (u.w or 0) > 0 and u.w < p.w then return u.w end
  return p.w
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

local function of(log, w)
  if #log == 0 then w = 0 end
  return {k = 's', log = log, w = w}
end

-- The log with future entries moved to now; and whether anything moved.
local function clamp_future(log, now)
  if #log == 0 or log[#log][1] <= now then return log, false end
  local parts = {}
  for i, e in ipairs(log) do parts[i] = {math.min(e[1], now), e[2]} end
  return merged(parts), true
end

-- The log after recording `cost` at now: what no longer counts dropped, under p's window.
local function record(p, u, now, cost)
  local l = live(cw(p, u), u.log, now)
  l[#l + 1] = {now, cost}
  return of(merged(l), p.w)
end

return {
  repair = function(p, u, now)
    local log, moved = clamp_future(u.log, now)
    if not moved then return u, false end
    return of(log, u.w or 0), true
  end,
  fits = function(p, u, now, cost) return cost <= p.l and used(cw(p, u), u.log, now) + cost <= p.l end,
  counted = function(p, u, now, cost) return record(p, u, now, cost) end,
  remaining = function(p, u, now) return math.max(p.l - used(cw(p, u), u.log, now), 0) end,
  reset = function(p, u, now) return log_empty_at(cw(p, u), u.log, now) - now end,
  retry = function(p, u, now, cost)
    local w = cw(p, u)
    local l = live(w, u.log, now)
    local rest = 0
    for _, e in ipairs(l) do rest = rest + e[2] end
    for _, e in ipairs(l) do
      rest = rest - e[2]
      if rest + cost <= p.l then return math.max(e[1] + w - now, 1) end
    end
    return w
  end,
  empty_at = function(p, u, now) return log_empty_at(cw(p, u), u.log, now) end,
  -- When the log is empty under its own window; nil when it does not know its window.
  own_empty_at = function(u, now)
    if (u.w or 0) == 0 then
      if #u.log == 0 then return now end
      return nil
    end
    return log_empty_at(u.w, u.log, now)
  end,
  -- Reconfigured within the kind at `at`: what the log's own window had not forgotten then
  -- and the new window still holds, recorded under the new window from then on.
  carry = function(p, u, at)
    local cutoff = at - cw(p, u)
    local out = {}
    for _, e in ipairs(u.log) do
      if e[1] > cutoff then out[#out + 1] = {e[1], e[2]} end
    end
    return of(out, p.w)
  end,
  -- The requests still live at `at` under the window they were recorded in (all of them when
  -- it is unknown), for a limit of another kind: n, or nil.
  export = function(u, at)
    local n = 0
    if (u.w or 0) == 0 then
      for _, e in ipairs(u.log) do n = n + e[2] end
    else
      n = used(u.w, u.log, at)
    end
    if n == 0 then return nil end
    return {what = 'requests', n = n}
  end,
  -- What another kind carried, as requests made at `at` (at most the limit): a GCRA backlog
  -- counts as the requests this limit admits in it, rounded up.
  import = function(p, carried, at)
    local count = 0
    if carried ~= nil then
      if carried.what == 'requests' then count = carried.n else count = gcra_requests_in(carried.tat, p, at) end
    end
    count = math.min(count, p.l)
    if count == 0 then return of({}, 0) end
    return of({{at, count}}, p.w)
  end,
  -- n units off the most recent live entries first; with `at` (a settle), only off the
  -- entry recorded at that instant: never another request's.
  refund = function(p, u, now, n, at)
    local entries = merged(live(cw(p, u), u.log, now))
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
    return of(merged(entries), u.w or 0), given
  end,
  -- units recorded at now, then at most `limit` live: the oldest excess dropped.
  charge = function(p, u, now, units)
    local entries = record(p, u, now, units).log
    local excess = -p.l
    for _, e in ipairs(entries) do excess = excess + e[2] end
    for _, e in ipairs(entries) do
      local take = math.min(math.max(excess, 0), e[2])
      e[2] = e[2] - take
      excess = excess - take
    end
    return of(merged(entries), p.w)
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
  own_empty_at = function(u, now)
    local last = now
    for _, x in ipairs(live_leases(u, now)) do last = math.max(last, x[3]) end
    return last
  end,
  -- A lease is not a request: kept at the same position, never carried to another kind.
  carry = function(p, u, at) return {k = 'c', leases = live_leases(u, at)} end,
  export = function() return nil end,
  import = function(p) return empty_usage(p) end,
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

-- Reconfiguration (state.rs: carried, view) ------------------------------------------------

-- `usage` carried to `limits` at `at`, position by position: kept by its kind's rule when the
-- kind is the same, else what was still live under the old limit then, imported by the new
-- one; a limit added at the end starts empty.
local function carried(limits, usage, at)
  local out = {}
  for i, p in ipairs(limits) do
    local u = usage[i]
    if u == nil then out[i] = empty_usage(p)
    elseif u.k == p.k then out[i] = kind(p.k).carry(p, u, at)
    else out[i] = kind(p.k).import(p, kind(u.k).export(u, at), at) end
  end
  return out
end

local function is_native(limits, usage)
  if #usage ~= #limits then return false end
  for i, p in ipairs(limits) do
    if usage[i].k ~= p.k then return false end
  end
  return true
end

-- The usage `limits` read at now: as recorded when native and nothing is pending; else
-- carried as of the pending change (`pending`, ms), or as of now for a key without a stored
-- policy read under a call's.
local function view(limits, usage, pending, now)
  if pending == nil and is_native(limits, usage) then
    local out = {}
    for i, u in ipairs(usage) do out[i] = u end
    return out
  end
  return carried(limits, usage, pending or now)
end

local function empty_at_all(limits, usage, now)
  local at = now
  for i, p in ipairs(limits) do at = math.max(at, kind(p.k).empty_at(p, usage[i], now)) end
  return at
end

-- One request against a set (limits.rs, decide) -------------------------------------------

-- `usage`: as the limits read it (view). Returns the outcome {allowed, binding, limit,
-- remaining, retry, reset, each}, the new usage (nil when nothing is to be written: denied
-- without a clock repair) and the usage as read after a clock repair (what a denial that
-- blocks writes). When allowed, each CONCURRENCY limit records a lease `lease_id`.
-- `denied`: told as a denial whatever the limits say (a blocked key): nothing is counted, and
-- the numbers are those of a denial (each limit that admits waits 0).
local function decide(limits, usage, now, cost, lease_id, denied)
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
  if denied then allowed = false end
  local each, new = {}, {}
  for i, p in ipairs(limits) do
    local n = usage[i]
    if allowed then n = kind(p.k).counted(p, n, now, cost, lease_id) end
    each[i] = {limit = p.b, remaining = kind(p.k).remaining(p, n, now), reset = kind(p.k).reset(p, n, now)}
    if not admits[i] and cost <= p.b then each[i].retry = kind(p.k).retry(p, usage[i], now, cost)
    elseif denied then each[i].retry = 0 end
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
      if (denied or not admits[i]) and (each[i].retry or -1) > longest then binding, longest = i, each[i].retry or -1 end
    end
  end
  local remaining = each[1].remaining
  for i = 2, #limits do remaining = math.min(remaining, each[i].remaining) end
  local retry = -1
  if not allowed and never == nil then retry = math.max(each[binding].retry or -1, 1) end
  -- reset_after_ms: until every limit is empty (the module's since issue 17).
  local reset = 0
  for i = 1, #limits do reset = math.max(reset, each[i].reset) end
  local out = {allowed = allowed, binding = binding - 1, limit = each[binding].limit, remaining = remaining,
               retry = retry, reset = reset, each = each}
  if allowed or repaired then return out, new, usage end
  return out, nil, usage
end


-- The key ---------------------------------------------------------------------------------

local FIELDS = {'_rl', 'u', 'p', 'i', 's', 'y', 'q', 'h', 'b', 'n', 'x'}

local function open_holds(st, now)
  local out = {}
  for _, h in ipairs(st.holds) do
    if h.exp > now then out[#out + 1] = h end
  end
  return out
end

-- (t, f) of a TAT in units of 1/limit ms compared: -1, 0 or 1.
local function tat_cmp(a, b, limit)
  local at, af = tat_in(a, limit)
  local bt, bf = tat_in(b, limit)
  if at ~= bt then return at < bt and -1 or 1 end
  if af ~= bf then return af < bf and -1 or 1 end
  return 0
end

-- Every hold's GCRA end at most its bucket's TAT (after a change that lowered it).
local function ends_within(limits, usage, holds)
  for _, h in ipairs(holds) do
    for i = 1, h.n_ends or 0 do
      local e, p, u = h.ends[i], limits[i], usage[i]
      if e and p ~= nil and p.k == 'g' and u ~= nil and u.k == 'g' and tat_cmp(e, u, p.l) > 0 then h.ends[i] = u end
    end
  end
end

local function encode_hold(h)
  local text = str(h.id) .. ':' .. str(h.est) .. ':' .. str(h.at) .. ':' .. str(h.exp)
  if h.ends == nil or h.n_ends == nil or h.n_ends == 0 then return text end
  local parts = {}
  for i = 1, h.n_ends do
    local e = h.ends[i]
    parts[i] = e and (str(e.t) .. '/' .. str(e.f) .. '/' .. str(e.d)) or ''
  end
  return text .. ':' .. table.concat(parts, ',')
end

local function decode_hold(text)
  local id, e, at, exp, rest = text:match('^(%d+):(%d+):(%d+):(%d+):?(.*)$')
  if id == nil then fail(FOREIGN) end
  local h = {id = tonumber(id), est = tonumber(e), at = tonumber(at), exp = tonumber(exp), ends = {}, n_ends = 0}
  if rest ~= '' then
    for item in (rest .. ','):gmatch('([^,]*),') do
      h.n_ends = h.n_ends + 1
      local t, f, d = item:match('^(%d+)/(%d+)/(%d+)$')
      if t ~= nil then h.ends[h.n_ends] = {k = 'g', t = tonumber(t), f = tonumber(f), d = tonumber(d)} end
    end
  end
  return h
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
  for item in (h[8] or ''):gmatch('[^|]+') do st.holds[#st.holds + 1] = decode_hold(item) end
  if h[11] then st.pending = tonumber(h[11]) end
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

-- The first ms from which the usage as recorded is empty (RL.INFO's and RL.RESET's number
-- for a key without a stored policy); a log written before logs kept their window tells it
-- only through the key's expiry.
local function own_empty_at(key, usage, now)
  local at = now
  for _, u in ipairs(usage) do
    local e = kind(u.k).own_empty_at(u, now)
    if e == nil then e = redis.call('PEXPIRETIME', key) end
    at = math.max(at, e)
  end
  return at
end

-- The usage `limits` read at now (view), as of the key's pending change if any.
local function seen(limits, st, now)
  if st == nil then return view(limits, {}, nil, now) end
  return view(limits, st.usage, st.pending, now)
end

-- The first ms from which the key holds nothing that matters: its usage as recorded empty
-- (`limits` nil) or every limit of `limits` empty, every hold and lease expired, the block over.
local function empty_at_key(key, st, limits, now)
  local at
  if limits ~= nil then at = empty_at_all(limits, seen(limits, st, now), now) else at = own_empty_at(key, st.usage, now) end
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
    if limits ~= nil then ends_within(limits, st.usage, st.holds) end
    local parts = {}
    for i, h in ipairs(st.holds) do parts[i] = encode_hold(h) end
    if #parts > 0 then holds = table.concat(parts, '|') end
  end
  field(st, set, del, 'h', holds)
  field(st, set, del, 'b', st.block and (str(st.block.untl) .. ':' .. str(st.block.level)) or nil)
  field(st, set, del, 'n', st.last and str(st.last) or nil)
  field(st, set, del, 'x', st.pending and str(st.pending) or nil)
  if st.limits == nil and limits ~= nil then
    local q = encode_limits(limits)
    if q ~= st.q_text then field(st, set, del, 'q', q) end
    st.q, st.q_text = limits, q
  end
  redis.call('HSET', key, unpack(set))
  if #del > 0 then redis.call('HDEL', key, unpack(del)) end
  if st.limits == nil then
    redis.call('PEXPIREAT', key, str(empty_at_key(key, st, nil, now)))
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
  local untl = blocked_until(st, now)
  local o, new, read = decide(limits, seen(limits, st, now), now, cost, lease_id or 0, untl ~= nil)
  local shadow = source == 'stored' and st.shadow
  local id = false
  local allowed, remaining, retry, reset = o.allowed or shadow, o.remaining, o.retry, o.reset
  if shadow then retry = -1 end
  -- A blocked check (also the denial that starts a penalty): denied, remaining 0, retry when
  -- both the block has ended and the limits admit it (-1: never), reset when both are over.
  local function blocked_numbers(until_ms)
    remaining, reset = 0, math.max(until_ms - now, o.reset)
    if o.retry >= 0 then retry = math.max(until_ms - now, o.retry) end
  end
  if untl ~= nil then
    -- Counts nothing, extends nothing; a shadow key is told allowed.
    allowed = shadow
    if not shadow then blocked_numbers(untl) else remaining = 0 end
    if shadow then reset = math.max(untl - now, o.reset) end
  elseif mode ~= 'peek' and (new ~= nil or (not o.allowed and not shadow and penalty ~= nil)) then
    st = st or fresh()
    -- Written under `limits`: the usage in their form, nothing pending any more.
    st.usage, st.pending = new or read, nil
    if o.allowed and mode == 'reserve' then
      id = next_id(st, now)
      st.holds = open_holds(st, now)
      -- Each GCRA limit's TAT right after the reserve: a settle never gives back more of
      -- this hold than has not drained.
      local ends = {}
      for i, u in ipairs(new) do
        if u.k == 'g' then ends[i] = {k = 'g', t = u.t, f = u.f, d = u.d} end
      end
      st.holds[#st.holds + 1] = {id = id, est = cost, at = now, exp = now + hold_ms, ends = ends, n_ends = #new}
      st.last = id
    elseif o.allowed and lease_id ~= nil then
      id, st.last = lease_id, lease_id
    elseif not o.allowed and not shadow and penalty ~= nil then
      -- A denial of a key that is not blocked blocks it: ms * 2^level, at most max; the
      -- level one more than the last block's when that ended less than one window ago (at
      -- most 63). It tells the truth about the block it starts.
      local level, longest = 0, 0
      for _, p in ipairs(limits) do longest = math.max(longest, p.w) end
      if st.block ~= nil and now - st.block.untl < longest then level = math.min(st.block.level + 1, 63) end
      st.block = {untl = now + math.min(penalty.ms * 2 ^ math.min(level, 64), penalty.max), level = level}
      blocked_numbers(st.block.untl)
    end
    save(key, st, limits, now)
  end
  local reply = {allowed and 1 or 0, o.limit, remaining, retry, reset}
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
  -- `usage`: as the limits read it (seen).
  local function adjust_all(limits, usage, now, charge, n, at)
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
    local usage, given = adjust_all(limits, seen(limits, st, now), now, false, n)
    if given == 0 then return 0 end
    st.usage, st.pending = usage, nil
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
    st.holds = rest
    if d == 0 then
      save(key, st, nil, now)
      return 0
    end
    local usage = seen(limits, st, now)
    local reply = d
    if d < 0 then
      -- Never more than the hold: a GCRA limit gives back only what of the hold has not
      -- drained (g = min(units*T, end - max(now, end - estimate*T)), in 1/limit ms, relative
      -- to now), moving later holds' ends earlier by as much; a SLIDING one only from the
      -- hold's own entry.
      local units, most = -d, 0
      for i, p in ipairs(limits) do
        local given = 0
        local e = hold.ends and hold.ends[i]
        if p.k == 'g' and e then
          local et, ef = tat_in(e, p.l)
          local rel = et - now
          local g = 0
          if rel > 0 or (rel == 0 and ef > 0) then
            local tol = p.b * p.w
            local ends = tol
            if rel <= fdiv(tol, p.l) then ends = math.min(rel * p.l + ef, tol) end
            g = math.min(ends, hold.est * p.w, units * p.w)
          end
          local b = backlog(p, usage[i], now)
          g = math.min(g, b)
          if g > 0 then
            usage[i] = tat_at(p, now, b - g)
            given = cdiv(g, p.w)
            for _, h in ipairs(rest) do
              local o = h.ends and h.ends[i]
              if o and tat_cmp(o, e, p.l) > 0 then
                local ot, of = tat_in(o, p.l)
                h.ends[i] = tat_at(p, now, (ot - now) * p.l + of - g)
              end
            end
          end
        elseif p.k == 's' then
          usage[i], given = kind('s').refund(p, usage[i], now, units, hold.at)
        end
        most = math.max(most, given)
      end
      reply = -most
    else
      usage = adjust_all(limits, usage, now, true, d)
    end
    st.usage, st.pending = usage, nil
    save(key, st, limits, now)
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
    -- The usage as recorded is kept and carried on every read as of this change (x), until
    -- the next write under the new limits stores it in their form; a second change within the
    -- same ms carries from the usage before the first, so a chain of them reads as the last
    -- one alone (State::configure).
    local raw = st.usage
    if st.pending ~= nil and st.pending == now then
      -- the chain composes: still the usage before this ms's first change
    elseif st.pending ~= nil and st.limits ~= nil then
      raw = carried(st.limits, raw, st.pending)
    elseif st.limits ~= nil then
      -- logs written before logs kept their window: the window of the limit that wrote them
      for i, u in ipairs(raw) do
        local p = st.limits[i]
        if p ~= nil and p.k == 's' and u.k == 's' and (u.w or 0) == 0 and #u.log > 0 then raw[i] = {k = 's', log = u.log, w = p.w} end
      end
    end
    if #raw == 0 then
      for i, p in ipairs(limits) do raw[i] = empty_usage(p) end
      st.pending = nil
    elseif is_native(limits, raw) and encode_usage(carried(limits, raw, now)) == encode_usage(raw) then
      st.pending = nil
    else
      st.pending = now
    end
    st.usage, st.limits, st.idle, st.penalty = raw, limits, idle, penalty
    local y = penalty and (str(penalty.ms) .. ':' .. str(penalty.max)) or nil
    redis.call('HSET', key, '_rl', VERSION, 'p', encode_limits(limits), 'i', str(idle), 's', shadow)
    if y then redis.call('HSET', key, 'y', y) elseif st.present.y then redis.call('HDEL', key, 'y') end
    if st.present.q then redis.call('HDEL', key, 'q') end
    st.present.q = false
    if idle == 0 then redis.call('PERSIST', key) end -- configuration does not expire without IDLE
    save(key, st, nil, now)
    return {ok = 'OK'}
  end

  local function reset(key, now)
    local st = load(key)
    if st == nil then return 0 end
    if st.limits == nil then
      -- A usage-only key goes, its id sequence with it: the backlog its usage as recorded held.
      local forgotten = own_empty_at(key, st.usage, now) - now
      redis.call('DEL', key)
      return forgotten
    end
    local forgotten = decide(st.limits, seen(st.limits, st, now), now, 2^53).reset
    local empty = {}
    for i, p in ipairs(st.limits) do empty[i] = empty_usage(p) end
    st.usage, st.pending, st.holds, st.block = empty, nil, {}, nil
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
      -- the stored PENALTY (nil without one, and for a key without a stored policy)
      local pen_ms, pen_max = false, false
      if st.limits ~= nil and st.penalty ~= nil then pen_ms, pen_max = st.penalty.ms, st.penalty.max end
      return {'blocked_ms', untl and (untl - now) or 0, 'penalty_level', st.block and st.block.level or 0,
              'penalty_ms', pen_ms, 'penalty_max_ms', pen_max,
              'holds', #holds, 'held', held_units, 'next_hold_expiry_ms', next_exp, 'leases', leases}
    end

    local function append(out, items)
      for _, v in ipairs(items) do out[#out + 1] = v end
      return out
    end
    local st = load(key)
    if st == nil then return false end
    local limits, usage = st.limits, st.usage
    -- `kind` and `limits` too for several limits, another kind than GCRA or a pending change,
    -- and (as the module of issues 19/20 does) for a key with parts of its own: holds, a block
    -- (kept after it ends, for its level) or an id sequence
    local parts = #st.holds > 0 or st.block ~= nil or st.last ~= nil
    local set = (limits ~= nil and (#limits > 1 or limits[1].k ~= 'g' or st.pending ~= nil or parts))
      or (limits == nil and (#usage > 1 or (usage[1] ~= nil and usage[1].k ~= 'g') or parts))
    if limits == nil then
      local reset_after = own_empty_at(key, usage, now) - now
      local out = {'source', 'none', 'limit', false, 'window_ms', false, 'burst', false, 'idle_ms', false,
                   'shadow', false, 'scale_percent', 100, 'remaining', false, 'reset_after_ms', reset_after}
      if set then
        -- its usages as recorded: kind, a SLIDING log's window, and when each is empty
        local each = {}
        for i, u in ipairs(usage) do
          each[i] = {'kind', KIND_NAMES[u.k], 'limit', false, 'window_ms', u.k == 's' and (u.w or 0) > 0 and u.w or false,
                     'burst', false, 'remaining', false, 'reset_after_ms', own_empty_at(key, {u}, now) - now}
          if u.k == 'c' then
            local next_exp = false
            for _, x in ipairs(live_leases(u, now)) do
              if next_exp == false or x[3] - now < next_exp then next_exp = x[3] - now end
            end
            append(each[i], {'held', held(u, now), 'next_expiry_ms', next_exp})
          end
        end
        -- a key of parts alone (RL.BLOCK on an absent key): no kind, no limits
        append(out, {'kind', usage[1] ~= nil and KIND_NAMES[usage[1].k] or false, 'limits', each})
      end
      return append(out, key_fields(st, now))
    end
    usage = seen(limits, st, now)
    local o = decide(limits, usage, now, 2^53)
    local first = limits[1]
    local out = {'source', 'stored', 'limit', first.l, 'window_ms', first.w, 'burst', first.b,
                 'idle_ms', st.idle, 'shadow', st.shadow and 1 or 0, 'scale_percent', 100,
                 'remaining', o.remaining, 'reset_after_ms', o.reset}
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
