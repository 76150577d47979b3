// Compiled by `tsc` in `npm test`: the declarations (index.d.ts,
// redis-store.d.ts) describe the API as the JS really has it, and these uses
// type-check. Never run.
import { createCache, MemoryStore, NscacheError, checkComponentVersion, jspiAvailable, WIT_VERSION, type ErrorCode } from '@nscache/cache';
import { RedisStore } from '@nscache/cache/redis';

async function uses(): Promise<void> {
  const cache = await createCache({ store: new MemoryStore(), settings: { keyPrefix: 'app', keyVersion: 3n }, cacheEnabled: (user: string) => user !== '7' });
  const value: Uint8Array | undefined = await cache.user(42).get('k');
  const text: string | undefined = await cache.global().getText('k');
  const added: boolean = await cache.global().add('n', '0', null);
  const n: number = await cache.global().incr('n', 2);
  await cache.user('42').set('k', new Uint8Array([1, 2]), 60);
  const version: bigint = await cache.invalidateUser(42);
  const current: bigint | undefined = await cache.versionOf(42);
  const raw: unknown = await cache.call('cache.ttl', { tag: 'global' }, 'k');
  if (jspiAvailable()) {
    const store = await RedisStore.connect('redis://127.0.0.1:6379/15');
    await createCache({ store, bindings: 'jspi' });
    await store.close();
  }
  try {
    await cache.global().incr('missing');
  } catch (e) {
    if (e instanceof NscacheError) {
      const code: ErrorCode = e.code;
      void code;
    }
  }
  checkComponentVersion([`nscache:cache/cache@${WIT_VERSION}`]);
  void [value, text, added, n, version, current, raw];
}
void uses;
