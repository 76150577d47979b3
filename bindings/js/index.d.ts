// Types of what index.js really exports (the generated gen/*/nscache.d.ts
// describe jco's raw bindings, which this package wraps).

/** The WIT package this package was built from. */
export const WIT_PACKAGE: 'nscache:cache';
/** Its version; a component must have the same major.minor. */
export const WIT_VERSION: string;

/** Throw unless every `nscache:cache/...@X.Y.Z` name has this package's major.minor (checked at every instantiation). */
export function checkComponentVersion(exportNames: string[]): void;

/** True when this engine has JSPI (`WebAssembly.Suspending`), which the Redis store needs. */
export function jspiAvailable(): boolean;

/** The WIT `error` cases of a failed operation. */
export type ErrorCode =
  | 'unavailable' | 'key-too-long' | 'value-too-large' | 'invalid-name' | 'invalid-argument'
  | 'not-found' | 'not-an-integer' | 'internal' | 'reply-too-large' | 'quota-exceeded';

/** A failed cache operation. */
export class NscacheError extends Error {
  readonly name: 'NscacheError';
  readonly code: ErrorCode;
}

/** What a store throws to fail an import with a WIT `store-error`. */
export function storeError(
  tag: 'unavailable' | 'other' | 'too-large' | 'not-an-integer',
  message?: string,
): { payload: { tag: string; val?: string } };

/** A store for the component: its `imports()` are the WIT `store`, `batch` and `atomics` interfaces, camelCase. */
export interface ComponentStore {
  imports(): {
    store: Record<'get' | 'set' | 'delete' | 'exists' | 'expire' | 'ttl' | 'nowMicros', (...args: any[]) => unknown>;
    batch: Record<'getMany' | 'setMany' | 'deleteMany' | 'getIndirect', (...args: any[]) => unknown>;
    atomics: Record<'increment' | 'setIfAbsent' | 'swapIf' | 'deleteIf' | 'putCounted', (...args: any[]) => unknown>;
  };
}

/** An in-memory store (synchronous: runs on the sync bindings, any Node.js ≥ 20). */
export class MemoryStore implements ComponentStore {
  constructor();
  imports(): ReturnType<ComponentStore['imports']>;
}

/** Fields of the WIT `settings` record (`config.settings`), camelCase; u64 fields are bigint. */
export interface Settings {
  keyPrefix: string;
  keyVersion: bigint;
  namespaceRoot: string;
  defaultTtlMs: bigint;
  maxKeyBytes: number;
  maxValueBytes: number;
  clusterHashTags: boolean;
  maxReplyBytes: bigint;
  namespaceQuotaBytes: bigint;
  maxNamespaceTtlMs: bigint;
}

export interface CreateCacheOptions {
  /** Default: a new MemoryStore. On the sync bindings every import must return its value. */
  store?: ComponentStore;
  /** The user's `cache_enabled` flag (default: always true). Throw `{ payload: 'why' }` when unknown. */
  cacheEnabled?: (user: string) => boolean;
  /** Settings to change from the component's defaults. */
  settings?: Partial<Settings>;
  /** `'sync'` (default) or `'jspi'` (a store returning Promises; needs WebAssembly.Suspending). */
  bindings?: 'sync' | 'jspi';
}

/** Create a cache: one component instance bound to a store. Rejects if the bindings cannot run here. */
export function createCache(options?: CreateCacheOptions): Promise<Cache>;

/** One component instance; calls run one at a time, in order. */
export class Cache {
  readonly bindings: 'sync' | 'jspi';
  /**
   * Call an export by WIT name (`'cache.get'`, `'invalidation.invalidate-user'`, ...) with jco's
   * values (u64/s64 as bigint, list<u8> as Uint8Array, variants as `{ tag, val }`). Resolves to the
   * `ok` value; rejects with an NscacheError for the `err` case.
   */
  call(func: string, ...args: unknown[]): Promise<any>;
  /** The global keyspace (`{prefix}:{version}:{key}`). */
  global(): Keyspace;
  /** A user's namespace (`cache:{user}:v{n}:data:{key}`). */
  user(id: string | number): Keyspace;
  /** Invalidate a user's namespace in O(1); the new version. */
  invalidateUser(id: string | number): Promise<bigint>;
  /** Invalidate every cached query over a table; the table's new version. */
  invalidateTable(table: string): Promise<bigint>;
  /** The current version of a user's namespace, or undefined. */
  versionOf(id: string | number): Promise<bigint | undefined>;
}

/** Django's cache operations in one keyspace. TTLs in seconds: undefined = default (300), null = never, 0 = at once. */
export class Keyspace {
  get(key: string): Promise<Uint8Array | undefined>;
  getText(key: string): Promise<string | undefined>;
  set(key: string, value: string | Uint8Array, ttlSeconds?: number | null): Promise<void>;
  add(key: string, value: string | Uint8Array, ttlSeconds?: number | null): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  incr(key: string, delta?: number): Promise<number>;
}
