/**
 * Lua scripts: each runs atomically in Redis, which is what makes a lease
 * check and the write it guards one step (fencing), and a join token
 * single-use across every replica. A write needs the lease it names to be
 * the one held: with none held (the session was released or deleted) it is
 * refused too, so a late or reordered write cannot bring a deleted session
 * back for another replica to adopt. A delete also goes through when none is.
 */

/** KEYS: lease, target, tenant set. ARGV: expected lease ("replica:epoch"), record JSON, session id. 0 when fenced. */
export const PUT_SESSION = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1`;

/** KEYS: lease, record, tenant set, executions hash, events stream, journal meta, epoch. ARGV: expected lease, session id. */
export const DELETE_SESSION = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
return 1`;

/**
 * KEYS: lease, epoch counter. ARGV: replica id, replica key prefix.
 * The lease ("replica:epoch"), or nil while another replica that still
 * announces itself (its key exists) holds it. A dead holder's sessions are
 * taken with a new epoch, which fences the old owner's writes.
 */
export const ACQUIRE_LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder = string.match(cur, '^(.*):%d+$')
  if holder == ARGV[1] then return cur end
  if holder and redis.call('EXISTS', ARGV[2] .. holder) == 1 then return nil end
end
local epoch = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. epoch
redis.call('SET', KEYS[1], value)
return value`;

/** KEYS: lease. ARGV: expected lease. */
export const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/** KEYS: join token. ARGV: now (ms). "invalid", "reused", "expired", or the record JSON (now spent). */
export const CONSUME_JOIN_TOKEN = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 'invalid' end
local entry = cjson.decode(raw)
if entry.spent then return 'reused' end
if tonumber(ARGV[1]) >= entry.expiresAt then return 'expired' end
entry.spent = true
redis.call('SET', KEYS[1], cjson.encode(entry), 'KEEPTTL')
return raw`;

/** KEYS: join token. Marks it spent (its launch ended before the worker joined). */
export const REVOKE_JOIN_TOKEN = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local entry = cjson.decode(raw)
entry.spent = true
redis.call('SET', KEYS[1], cjson.encode(entry), 'KEEPTTL')
return 1`;

/** KEYS: lease, executions hash. ARGV: expected lease, request id, execution JSON. */
export const PUT_EXECUTION = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;

/**
 * An owner's flush as one step. KEYS: lease, session record, tenant set,
 * executions hash, events stream, journal meta. ARGV: expected lease, session
 * id, record JSON ("" when unchanged), keep-from seq, worker watermark
 * ("workerId:seq" or ""), execution count n, then n pairs (request id,
 * execution JSON), then per event: seq, request id ("" for none), at (ms),
 * done ("1"/"0"), frame. Stream ids are "<seq>-0": trimming by MINID keeps
 * what the owner keeps. 0 when fenced.
 */
export const PERSIST = `
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[2])
end
local n = tonumber(ARGV[6])
for i = 7, 6 + 2 * n, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
local first = 7 + 2 * n
local last = nil
for i = first, #ARGV, 5 do
  -- pcall: an event already there (a retried batch) is skipped, not an error.
  redis.pcall('XADD', KEYS[5], ARGV[i] .. '-0', 'r', ARGV[i + 1], 't', ARGV[i + 2], 'd', ARGV[i + 3], 'f', ARGV[i + 4])
  last = ARGV[i]
end
if tonumber(ARGV[4]) > 1 then redis.call('XTRIM', KEYS[5], 'MINID', ARGV[4] .. '-0') end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[6], 'worker', ARGV[5]) end
if last then redis.call('HSET', KEYS[6], 'seq', last) end
return 1`;

/**
 * KEYS: pool zset. ARGV: now ms, pool-claim key prefix, then pairs (member,
 * launch id). Adds each member not listed (ZADD NX keeps a listed one's age)
 * whose launch has no claim in flight.
 */
export const RELIST_POOL_MEMBERS = `
for i = 3, #ARGV, 2 do
  if redis.call('EXISTS', ARGV[2] .. ARGV[i + 1]) == 0 then redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[1]), ARGV[i]) end
end
return 1`;

/** KEYS: pool zset, the launch's claim key. ARGV: now ms, member, claim token. Lists the member again when the claim is still this token's (not redeemed). */
export const RELEASE_POOL_CLAIM = `
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[1]), ARGV[2])
return 1`;

/** KEYS: start slots zset. ARGV: slot id, max, now ms, ttl ms. */
export const ACQUIRE_START_SLOT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
return 1`;

/**
 * KEYS: pool zset (members "replicaId|launchId", scored by when listed).
 * ARGV: replica to skip (the claimer), replica key prefix, pool-claim key
 * prefix, claim token, claim TTL ms. The member taken, or nil. Members of a
 * replica whose key expired are dropped; a draining replica's are skipped.
 * Scans at most 200 members (pools are tens of workers).
 */
export const CLAIM_POOL_MEMBER = `
local members = redis.call('ZRANGE', KEYS[1], 0, 199)
for _, member in ipairs(members) do
  local replica, launch = string.match(member, '^([^|]*)|(.*)$')
  if replica and replica ~= ARGV[1] then
    local raw = redis.call('GET', ARGV[2] .. replica)
    if not raw then
      redis.call('ZREM', KEYS[1], member)
    elseif not cjson.decode(raw).draining then
      redis.call('ZREM', KEYS[1], member)
      redis.call('SET', ARGV[3] .. launch, ARGV[4], 'PX', tonumber(ARGV[5]))
      return member
    end
  end
end
return nil`;

/** KEYS: pool claim. ARGV: token. 1 (and the claim is spent) when it matches. */
export const REDEEM_POOL_CLAIM = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;
