// nscache for Node.js: the cache component (wit/, transpiled by jco into
// gen/) bound to a store. See README.md.
import { readFile } from 'node:fs/promises';
import { MemoryStore, storeError } from './memory-store.js';

export { MemoryStore, storeError };

/** The WIT package this package was built from; the component must match its major.minor. */
export const WIT_PACKAGE = 'nscache:cache';
export const WIT_VERSION = '0.1.0';
const INTERFACES = ['store', 'batch', 'atomics', 'profiles'];
const EXPORTS = ['cache', 'locks', 'invalidation', 'queries', 'config'];

/** True when this JavaScript engine has JSPI (`WebAssembly.Suspending`), which the Redis store needs. */
export function jspiAvailable() {
  return typeof WebAssembly.Suspending === 'function';
}

/** A failed cache operation: `code` is the WIT `error` case (`not-found`, `unavailable`, ...). */
export class NscacheError extends Error {
  constructor(code, message) {
    super(message ? `${code}: ${message}` : code);
    this.name = 'NscacheError';
    this.code = code;
  }
}

const modules = new Map();
async function bindingsModule(bindings) {
  if (!modules.has(bindings)) {
    const dir = new URL(`./gen/${bindings}/`, import.meta.url);
    const compiled = new Map();
    const getCoreModule = async (path) => {
      if (!compiled.has(path)) compiled.set(path, WebAssembly.compile(await readFile(new URL(path, dir))));
      return compiled.get(path);
    };
    modules.set(bindings, { mod: await import(new URL('nscache.js', dir)), getCoreModule });
  }
  return modules.get(bindings);
}

/** Make a Promise-returning import an immediate error on the synchronous bindings. */
function guardSync(name, fn) {
  return (...args) => {
    const result = fn(...args);
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      result.then(() => {}, () => {});
      throw new Error(
        `nscache: the import ${name} returned a Promise, but the synchronous bindings cannot wait for it ` +
          `(it would be a silent miss): use createCache({ bindings: 'jspi' }) on a Node.js with WebAssembly.Suspending`,
      );
    }
    return result;
  };
}

function importObject(store, cacheEnabled, bindings) {
  const given = { ...store.imports(), profiles: { cacheEnabled } };
  const out = {};
  for (const iface of INTERFACES) {
    const fns = {};
    for (const [name, fn] of Object.entries(given[iface] ?? {})) {
      fns[name] = bindings === 'sync' ? guardSync(`${iface}.${name}`, fn) : fn;
    }
    // jco's JS reads the unversioned name, its .d.ts the versioned one: give both.
    out[`${WIT_PACKAGE}/${iface}`] = fns;
    out[`${WIT_PACKAGE}/${iface}@${WIT_VERSION}`] = fns;
  }
  out[`${WIT_PACKAGE}/types`] = out[`${WIT_PACKAGE}/types@${WIT_VERSION}`] = {};
  return out;
}

/**
 * Refuse a component whose `nscache:cache` export names (`nscache:cache/cache@0.1.0`)
 * carry a version of another major.minor than this package's, or none.
 */
export function checkComponentVersion(exportNames) {
  const series = (v) => v.split('.').slice(0, 2).join('.');
  const names = exportNames.filter((k) => k.startsWith(`${WIT_PACKAGE}/`));
  const versions = [...new Set(names.map((k) => k.split('@')[1] ?? ''))];
  if (versions.length !== 1 || series(versions[0]) !== series(WIT_VERSION)) {
    throw new Error(
      `nscache: the component implements ${WIT_PACKAGE}@${versions.join(', ') || '(none)'}, ` +
        `this package supports ${WIT_PACKAGE}@${series(WIT_VERSION)}.x: use a component and package built from the same WIT version`,
    );
  }
}

/** The WIT `error` of a failed export call (jco throws it bare or in a ComponentError), or undefined for a trap. */
function errorPayload(e) {
  if (e === null || typeof e !== 'object') return undefined;
  if (!(e instanceof Error) && typeof e.tag === 'string') return e;
  return typeof e.payload?.tag === 'string' ? e.payload : undefined;
}

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/**
 * A cache: one component instance bound to a store. Calls are queued, one at
 * a time per instance (the component model forbids re-entering an instance
 * while a call is suspended on the store); use several caches for parallelism.
 */
export class Cache {
  #make;
  #root;
  #queue = Promise.resolve();
  /** `sync` or `jspi`. */
  bindings;

  constructor(make, root, bindings) {
    this.#make = make;
    this.#root = root;
    this.bindings = bindings;
  }

  /**
   * Call an export by its WIT name (`'cache.get'`, `'invalidation.invalidate-user'`)
   * with jco's JavaScript values. Resolves to the `ok` value; rejects with an
   * {@link NscacheError} for the `err` case.
   */
  call(func, ...args) {
    const run = async () => {
      const [iface, name] = func.split('.');
      if (!EXPORTS.includes(iface)) throw new TypeError(`nscache: no export ${func}`);
      this.#root ??= await this.#make();
      const fn = this.#root[iface][camel(name)];
      if (typeof fn !== 'function') throw new TypeError(`nscache: no export ${func}`);
      try {
        return await fn(...args);
      } catch (e) {
        const payload = errorPayload(e);
        if (payload) throw new NscacheError(payload.tag, payload.val);
        // A trap: the instance cannot be entered again; the next call gets a new one.
        this.#root = undefined;
        throw e;
      }
    };
    const result = this.#queue.then(run);
    this.#queue = result.then(() => {}, () => {});
    return result;
  }

  /** The global keyspace (Django's `{prefix}:{version}:{key}`). */
  global() {
    return new Keyspace(this, { tag: 'global' });
  }

  /** A user's namespace (`cache:{user}:v{n}:data:{key}`). */
  user(id) {
    return new Keyspace(this, { tag: 'user', val: String(id) });
  }

  /** Invalidate every entry of a user's namespace, in O(1); resolves to the new version. */
  invalidateUser(id) {
    return this.call('invalidation.invalidate-user', String(id));
  }

  /** Invalidate every cached query over `table`, for all users; resolves to the table's new version. */
  invalidateTable(table) {
    return this.call('invalidation.invalidate-table', table);
  }

  /** The current version of a user's namespace, or `undefined`. */
  versionOf(id) {
    return this.call('invalidation.version-of', String(id));
  }
}

const encoder = new TextEncoder();
const bytes = (v) => (typeof v === 'string' ? encoder.encode(v) : v);
/** An expiry in seconds (`undefined`: the default, `null`: never, `0`: at once). */
const expiry = (seconds) =>
  seconds === undefined ? { tag: 'default' } : seconds === null ? { tag: 'never' } : { tag: 'after-ms', val: BigInt(Math.round(seconds * 1000)) };

/** One keyspace of a {@link Cache}: Django's cache operations. */
export class Keyspace {
  #cache;
  #scope;
  constructor(cache, scope) {
    this.#cache = cache;
    this.#scope = scope;
  }
  /** The value (bytes), or `undefined` on a miss. */
  get(key) {
    return this.#cache.call('cache.get', this.#scope, key);
  }
  /** The value as UTF-8 text, or `undefined` on a miss. */
  async getText(key) {
    const value = await this.get(key);
    return value === undefined ? undefined : new TextDecoder().decode(value);
  }
  /** Store a value (string or bytes) for `ttlSeconds` (default 300, `null` never, `0` at once). */
  set(key, value, ttlSeconds) {
    return this.#cache.call('cache.set', this.#scope, key, bytes(value), expiry(ttlSeconds));
  }
  /** Store only if absent; resolves to true if stored. */
  add(key, value, ttlSeconds) {
    return this.#cache.call('cache.add', this.#scope, key, bytes(value), expiry(ttlSeconds));
  }
  /** Remove a key; resolves to true if it existed. */
  delete(key) {
    return this.#cache.call('cache.delete', this.#scope, key);
  }
  /** Add to an integer (atomic); rejects with code `not-found` on a missing key. */
  async incr(key, delta = 1) {
    return Number(await this.#cache.call('cache.incr', this.#scope, key, BigInt(delta)));
  }
}

/**
 * Create a cache: a component instance bound to `store`.
 *
 * - `store`: an object whose `imports()` returns `{ store, batch, atomics }`
 *   (default: a new {@link MemoryStore}). On the `sync` bindings every import
 *   must return its value; on `jspi` it may return a Promise.
 * - `cacheEnabled(user)`: the user's `cache_enabled` flag (default: true).
 * - `settings`: fields of the WIT `settings` record to change (camelCase).
 * - `bindings`: `'sync'` (default) or `'jspi'` (needs `WebAssembly.Suspending`).
 */
export async function createCache({ store = new MemoryStore(), cacheEnabled = () => true, settings, bindings = 'sync' } = {}) {
  if (bindings !== 'sync' && bindings !== 'jspi') throw new TypeError(`nscache: bindings must be 'sync' or 'jspi', not ${bindings}`);
  if (bindings === 'jspi' && !jspiAvailable()) {
    throw new Error(
      `nscache: this Node.js (${process.version}) has no WebAssembly.Suspending (JSPI), which a store that returns ` +
        `Promises (Redis) needs: use Node.js 24 or later (no flag), or 22/23 with --experimental-wasm-jspi; ` +
        `the in-memory store works everywhere on the sync bindings`,
    );
  }
  const { mod, getCoreModule } = await bindingsModule(bindings);
  const make = async () => {
    const root = await mod.instantiate(getCoreModule, importObject(store, cacheEnabled, bindings));
    checkComponentVersion(Object.keys(root));
    if (settings) {
      const merged = { ...(await root.config.defaults()), ...settings };
      try {
        await root.config.configure(merged);
      } catch (e) {
        const payload = errorPayload(e);
        if (payload) throw new NscacheError(payload.tag, payload.val);
        throw e;
      }
    }
    return root;
  };
  return new Cache(make, await make(), bindings);
}
