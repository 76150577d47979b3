// A Redis store for the cache component, on the `redis` npm client: every
// import of `nscache:cache/{store,batch,atomics}` returns a Promise, so it
// runs only on the JSPI bindings (createCache({ bindings: 'jspi' })). The
// commands and scripts are those of the Rust host (host/src/store/redis.rs),
// so both hosts read and write one Redis interchangeably.
import { createHash } from 'node:crypto';
import { RESP_TYPES, createClient } from 'redis';
import { storeError } from './memory-store.js';

const BUDGET = `local function over_budget(keys, budget)
  local total = 0
  for _, k in ipairs(keys) do
    total = total + redis.call('STRLEN', k)
    if total > budget then return true end
  end
  return false
end`;

const SCRIPTS = {
  increment: `local before = redis.call('GET', KEYS[1])
if before then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return before`,
  swapIf: `local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1`,
  deleteIf: `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
  getIndirect: `${BUDGET}
local p = redis.call('GET', KEYS[1])
local read = {}
if p then
  for i = 3, #ARGV do read[#read + 1] = ARGV[2] .. p .. ARGV[i] end
end
local entries = #read
for i = 2, #KEYS do read[#read + 1] = KEYS[i] end
if over_budget(read, tonumber(ARGV[1])) then
  return redis.error_reply('TOOLARGE the values found are over budget')
end
local values = {}
for i = 1, entries do values[i] = redis.call('GET', read[i]) end
local also = {}
for i = 2, #KEYS do also[i - 1] = redis.call('GET', KEYS[i]) end
return {p, values, also}`,
  putCounted: `local n = #KEYS - 1
if ARGV[4] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
  n = 1
end
local size = 0
for i = 1, n do size = size + #ARGV[4 + i] end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used == nil then
  return redis.error_reply('ERR the byte counter is not an integer')
end
if used + size > tonumber(ARGV[1]) then return 2 end
redis.call('INCRBY', KEYS[1], size)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 1, n do
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1 + i], ARGV[4 + i])
  else
    redis.call('SET', KEYS[1 + i], ARGV[4 + i], 'PX', ARGV[3])
  end
end
return 0`,
};
const SHA = Object.fromEntries(Object.entries(SCRIPTS).map(([k, s]) => [k, createHash('sha1').update(s).digest('hex')]));

const buf = (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const opt = (v) => (v === null || v === undefined ? undefined : v);
const size = (values) => values.reduce((n, v) => n + (v ? v.length : 0), 0);
const I64 = (x) => BigInt.asIntN(64, x) === x;
// Replies as bytes, not text (values are bytes).
const BINARY = { [RESP_TYPES.BLOB_STRING]: Buffer };
const LONGEST_TTL_MS = ((1n << 63n) - 1n) / 2n;

function failure(e) {
  const text = String(e?.message ?? e);
  if (/not an integer|overflow/.test(text)) return storeError('not-an-integer');
  if (text.startsWith('TOOLARGE') || text.includes('TOOLARGE')) return storeError('too-large', text);
  if (e?.name === 'ClientClosedError' || e?.name === 'SocketClosedUnexpectedlyError' || e?.name === 'ConnectionTimeoutError' ||
      e?.code === 'ECONNREFUSED' || /LOADING|MASTERDOWN|READONLY|BUSY|TRYAGAIN|CLUSTERDOWN|offline|closed|ECONN/.test(text)) {
    return storeError('unavailable', text);
  }
  return storeError('other', text);
}

export class RedisStore {
  /** Connect to `url` (`redis://host:port/db`). */
  static async connect(url, options = {}) {
    const client = createClient({ url, ...options, socket: { reconnectStrategy: (n) => Math.min(n * 50, 1000), ...(options.socket ?? {}) } });
    client.on('error', () => {}); // reported per call as `unavailable`
    await client.connect();
    return new RedisStore(client);
  }

  constructor(client) {
    this.client = client;
    this.binary = client.withTypeMapping(BINARY);
  }

  /** Close the connection. */
  async close() {
    await this.client.close();
  }

  async #cmd(args) {
    try {
      return await this.client.sendCommand(args, { typeMapping: BINARY });
    } catch (e) {
      throw failure(e);
    }
  }

  async #script(name, keys, args) {
    const call = (verb, first) =>
      this.client.sendCommand([verb, first, String(keys.length), ...keys, ...args], { typeMapping: BINARY });
    try {
      return await call('EVALSHA', SHA[name]);
    } catch (e) {
      if (!String(e?.message).startsWith('NOSCRIPT')) throw failure(e);
    }
    try {
      return await call('EVAL', SCRIPTS[name]);
    } catch (e) {
      throw failure(e);
    }
  }

  /** The imports, keyed as the transpiled component reads them; every one returns a Promise. */
  imports() {
    const s = this;
    // The longest lifetime Redis takes (as the Rust host caps it).
    const px = (ttl) => (ttl === undefined ? [] : ['PX', String(ttl < LONGEST_TTL_MS ? ttl : LONGEST_TTL_MS)]);
    return {
      store: {
        get: async (key) => opt(await s.#cmd(['GET', key])),
        set: async (key, value, ttlMs) => {
          await s.#cmd(['SET', key, buf(value), ...px(ttlMs)]);
        },
        delete: async (key) => (await s.#cmd(['DEL', key])) > 0,
        exists: async (key) => (await s.#cmd(['EXISTS', key])) > 0,
        expire: async (key, ttlMs) => {
          if (ttlMs !== undefined) return (await s.#cmd(['PEXPIRE', key, ...px(ttlMs).slice(1)])) === 1;
          const [exists] = await s.#cmd(['EVAL', "local e = redis.call('EXISTS', KEYS[1]) redis.call('PERSIST', KEYS[1]) return {e}", '1', key]);
          return exists === 1;
        },
        ttl: async (key) => {
          const ms = await s.#cmd(['PTTL', key]);
          if (ms === -2) return { tag: 'missing' };
          if (ms === -1) return { tag: 'forever' };
          return { tag: 'remaining-ms', val: BigInt(ms) };
        },
        nowMicros: async () => {
          const [secs, micros] = await s.#cmd(['TIME']);
          return BigInt(String(secs)) * 1000000n + BigInt(String(micros));
        },
      },
      batch: {
        getMany: async (keys, maxBytes) => {
          if (keys.length === 0) return [];
          const values = (await s.#cmd(['MGET', ...keys])).map(opt);
          if (BigInt(size(values)) > maxBytes) throw storeError('too-large', `the values found are more than ${maxBytes} bytes`);
          return values;
        },
        setMany: async (entries, ttlMs) => {
          if (entries.length === 0) return;
          const multi = s.binary.multi();
          for (const [k, v] of entries) multi.addCommand(['SET', k, buf(v), ...px(ttlMs)]);
          try {
            await multi.exec();
          } catch (e) {
            throw failure(e);
          }
        },
        deleteMany: async (keys) => (keys.length === 0 ? 0 : Number(await s.#cmd(['UNLINK', ...keys]))),
        getIndirect: async (pointer, prefix, suffixes, also, maxBytes) => {
          const [p, values, more] = await s.#script('getIndirect', [pointer, ...also], [String(maxBytes), prefix, ...suffixes]);
          // Without a pointer the script reads no entry: every one is missing.
          const entries = p == null ? suffixes.map(() => undefined) : values.map(opt);
          return { pointer: opt(p), values: entries, also: more.map(opt) };
        },
      },
      atomics: {
        increment: async (key, delta) => {
          const before = await s.#script('increment', [key], [String(delta)]);
          if (before === null || before === undefined) return undefined;
          const text = before.toString();
          if (!/^[+-]?[0-9]+$/.test(text)) throw storeError('not-an-integer');
          const n = BigInt(text) + delta;
          if (!I64(n)) throw storeError('not-an-integer');
          return n;
        },
        setIfAbsent: async (key, value, ttlMs) => (await s.#cmd(['SET', key, buf(value), 'NX', ...px(ttlMs)])) !== null,
        swapIf: async (key, expected, value) =>
          (await s.#script('swapIf', [key], expected === undefined ? ['0', '', buf(value)] : ['1', buf(expected), buf(value)])) === 1,
        deleteIf: async (key, expected) => (await s.#script('deleteIf', [key], [buf(expected)])) === 1,
        putCounted: async (entries, ttlMs, counter, ifAbsent) => {
          const outcome = await s.#script(
            'putCounted',
            [counter.key, ...entries.map(([k]) => k)],
            [String(counter.limit), String(counter.ttlMs), ttlMs === undefined ? '' : String(ttlMs), ifAbsent ? '1' : '0', ...entries.map(([, v]) => buf(v))],
          );
          return ['stored', 'exists', 'over-limit'][outcome];
        },
      },
    };
  }
}
