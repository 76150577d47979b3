// An in-memory store for the cache component: every import of
// `nscache:cache/{store,batch,atomics}` over one Map, synchronous (it runs on
// the synchronous bindings). For tests, edge functions and single-process
// apps; entries expire by the wall clock. Contract: wit/store.wit,
// wit/batch.wit, wit/atomics.wit.

const MAX_I64 = (1n << 63n) - 1n;
const MIN_I64 = -(1n << 63n);
const utf8 = new TextDecoder();

/** A store error for the component (`store-error`): thrown, jco turns it into the `err` case. */
export function storeError(tag, message) {
  return { payload: message === undefined ? { tag } : { tag, val: message } };
}

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const size = (values) => values.reduce((n, v) => n + (v ? v.length : 0), 0);

export class MemoryStore {
  /** @type {Map<string, {value: Uint8Array, expires: number | undefined}>} */
  #entries = new Map();

  #now() {
    return Date.now();
  }

  #live(key) {
    const entry = this.#entries.get(key);
    if (entry && entry.expires !== undefined && entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #read(key) {
    return this.#live(key)?.value;
  }

  #write(key, value, ttlMs) {
    const expires = ttlMs === undefined ? undefined : this.#now() + Number(ttlMs);
    this.#entries.set(key, { value: Uint8Array.from(value), expires });
  }

  #within(values, maxBytes) {
    if (BigInt(size(values)) > maxBytes) {
      throw storeError('too-large', `the values found are more than ${maxBytes} bytes`);
    }
    return values;
  }

  /** The imports, keyed as the transpiled component reads them. */
  imports() {
    const s = this;
    return {
      store: {
        get: (key) => s.#read(key),
        set: (key, value, ttlMs) => s.#write(key, value, ttlMs),
        delete: (key) => s.#live(key) !== undefined && s.#entries.delete(key),
        exists: (key) => s.#live(key) !== undefined,
        expire: (key, ttlMs) => {
          const entry = s.#live(key);
          if (!entry) return false;
          entry.expires = ttlMs === undefined ? undefined : s.#now() + Number(ttlMs);
          return true;
        },
        ttl: (key) => {
          const entry = s.#live(key);
          if (!entry) return { tag: 'missing' };
          if (entry.expires === undefined) return { tag: 'forever' };
          return { tag: 'remaining-ms', val: BigInt(Math.max(0, entry.expires - s.#now())) };
        },
        nowMicros: () => BigInt(s.#now()) * 1000n,
      },
      batch: {
        getMany: (keys, maxBytes) => s.#within(keys.map((k) => s.#read(k)), maxBytes),
        setMany: (entries, ttlMs) => {
          for (const [k, v] of entries) s.#write(k, v, ttlMs);
        },
        deleteMany: (keys) => [...new Set(keys)].filter((k) => s.#live(k) !== undefined && s.#entries.delete(k)).length,
        getIndirect: (pointer, prefix, suffixes, also, maxBytes) => {
          const ptr = s.#read(pointer);
          const values = ptr === undefined
            ? suffixes.map(() => undefined)
            : suffixes.map((suffix) => s.#read(prefix + utf8.decode(ptr) + suffix));
          const more = also.map((k) => s.#read(k));
          s.#within([...values, ...more], maxBytes);
          return { pointer: ptr, values, also: more };
        },
      },
      atomics: {
        increment: (key, delta) => {
          const entry = s.#live(key);
          if (!entry) return undefined;
          const text = utf8.decode(entry.value);
          if (!/^[+-]?[0-9]+$/.test(text)) throw storeError('not-an-integer');
          const n = BigInt(text) + delta;
          if (BigInt(text) > MAX_I64 || BigInt(text) < MIN_I64 || n > MAX_I64 || n < MIN_I64) {
            throw storeError('not-an-integer');
          }
          entry.value = new TextEncoder().encode(n.toString());
          return n;
        },
        setIfAbsent: (key, value, ttlMs) => {
          if (s.#live(key)) return false;
          s.#write(key, value, ttlMs);
          return true;
        },
        swapIf: (key, expected, value) => {
          const current = s.#read(key);
          const same = expected === undefined ? current === undefined : current !== undefined && sameBytes(current, expected);
          if (!same) return false;
          s.#write(key, value, undefined);
          return true;
        },
        deleteIf: (key, expected) => {
          const current = s.#read(key);
          if (current === undefined || !sameBytes(current, expected)) return false;
          s.#entries.delete(key);
          return true;
        },
        putCounted: (entries, ttlMs, counter, ifAbsent) => {
          if (ifAbsent && entries.length > 0 && s.#live(entries[0][0])) return 'exists';
          const writes = ifAbsent ? entries.slice(0, 1) : entries;
          const raw = s.#read(counter.key);
          let used = 0n;
          if (raw !== undefined) {
            const text = utf8.decode(raw);
            if (!/^[0-9]+$/.test(text)) throw storeError('not-an-integer');
            used = BigInt(text);
          }
          const total = used + BigInt(size(writes.map(([, v]) => v)));
          if (total > counter.limit) return 'over-limit';
          s.#write(counter.key, new TextEncoder().encode(total.toString()), counter.ttlMs);
          for (const [k, v] of writes) s.#write(k, v, ttlMs);
          return 'stored';
        },
      },
    };
  }
}
