import type { ComponentStore } from './index.js';

/** A Redis store (the `redis` npm client). Its imports return Promises: use it with `bindings: 'jspi'`. */
export class RedisStore implements ComponentStore {
  /** Connect to `url` (`redis://host:port/db`); `options` go to the `redis` client's `createClient`. */
  static connect(url: string, options?: Record<string, unknown>): Promise<RedisStore>;
  imports(): ReturnType<ComponentStore['imports']>;
  /** Close the connection. */
  close(): Promise<void>;
}
