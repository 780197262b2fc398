//! The Lua scripts of the Redis store. Each touches only the keys it is given, all in one hash
//! slot, so they run unchanged on Redis Cluster (multi-key calls are split by slot first).

/// Writes ARGV[3] under KEYS[1] for ARGV[4] ms if the key still holds what the caller read:
/// nothing (ARGV[2] = -1), or a value of length ARGV[2] starting with ARGV[1]; with ARGV[5] =
/// 1, also over another value, but never over a tombstone the caller did not see, nor over a
/// key emptied since the caller read a value in it. With a
/// KEYS[2], then deletes it if it holds ARGV[6] (releases the caller's lease), written or not;
/// with ARGV[7] = 1 as well, writes over nothing only while KEYS[2] holds ARGV[6].
pub(super) static WRITE_IF: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local function release()
  if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
end
local cur = redis.call('GET', KEYS[1])
local same
if cur then
  same = tonumber(ARGV[2]) == #cur and string.sub(cur, 1, #ARGV[1]) == ARGV[1]
else
  same = ARGV[2] == '-1'
end
-- A key found empty is written only under a lease still held: a lease lost (expired, deleted
-- by a pattern invalidation, gone with a restarted server) may mean the emptiness it saw was
-- an invalidation's, or a tombstone's that is gone.
-- ARGV[7] = 1: the lease is within its TTL (a load may outlive it; then it is not asked for).
if same and not cur and KEYS[2] and ARGV[7] == '1' and redis.call('GET', KEYS[2]) ~= ARGV[6] then
  return 0
end
if not same then
  -- ARGV[5] = 1: a write-through replaces another value, but neither a tombstone written
  -- since nor a key emptied since (by a pattern or a clear, which must win as a key
  -- invalidation does; or by expiry, which a reload fills).
  if ARGV[5] ~= '1' or not cur or (#cur == 17 and string.byte(cur, 1) == 254) then
    release()
    return 0
  end
end
-- A failed SET (OOM under noeviction) still releases the lease, then reports its error.
local set = redis.pcall('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
release()
if type(set) == 'table' and set.err then return set end
return 1
",
    )
});

/// Unlinks every key of KEYS but tombstones (17 bytes, the first 254); returns how many. A
/// tombstone is a key invalidation's, which a load in flight is checked against: a pattern
/// that deleted it would let that load write its older value over the emptied key.
pub(super) static UNLINK_BUT_TOMBSTONES: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
local n = 0
for _, key in ipairs(KEYS) do
  local len = redis.pcall('STRLEN', key)
  local tombstone = len == 17 and string.byte(redis.call('GET', key), 1) == 254
  if not tombstone then n = n + redis.call('UNLINK', key) end
end
return n
",
        )
    });

/// Replaces KEYS[i] by the tombstone ARGV[i] for ARGV[#KEYS + 1] ms; returns how many held an
/// entry (entries are at least 32 bytes, tombstones 17).
pub(super) static TOMBSTONES: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local held = 0
local ttl = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  local len = redis.call('STRLEN', key)
  if len > 17 then held = held + 1 end
  redis.call('SET', key, ARGV[i], 'PX', ttl)
end
return held
",
    )
});

/// Deletes KEYS[1] if it holds ARGV[1].
pub(super) static DELETE_IF_EQUALS: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
        )
    });

/// Takes the lock KEYS[1] with token ARGV[1] for ARGV[2] ms if free, then returns INCR of the
/// fencing counter KEYS[2] (same hash slot: both keys carry the lock name as a hash tag).
pub(super) static LOCK_FENCED: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
",
        )
    });

/// One request against the rate limit KEYS[1] (GCRA, as in `store/gcra.rs`, whose tests cover
/// the arithmetic): ARGV[1] is the interval and ARGV[2] the tolerance, in µs. The key holds the
/// theoretical arrival time in µs of the server's clock (`TIME`), so every process and every
/// client shares one clock. Returns `{allowed, remaining, retry_after_us, reset_us}`; a denied
/// request writes nothing. Every number stays below 2^53, exact in Lua's doubles.
pub(super) static RATE_LIMIT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
-- Before Redis 5 a script that reads TIME and then writes must ask for effects replication.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
-- Absent, unreadable or past: a full quota.
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
if new_tat > now + tolerance then
  return {0, 0, new_tat - tolerance - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now + tolerance - new_tat) / interval), 0, new_tat - now}
",
    )
});
