// Get throughput of the Node package, in one run: a namespaced get (hit)
// through the component on the in-memory store (sync bindings) and on Redis
// (JSPI bindings, needs WebAssembly.Suspending: run with the pinned Node,
// `npm run bench`), beside a plain `redis` client GET of the same storage key.
// NSCACHE_BENCH_REDIS_URL (default redis://127.0.0.1:6379/15), BENCH_SECS (default 3).
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { createCache, jspiAvailable } from './index.js';
import { RedisStore } from './redis-store.js';

const url = process.env.NSCACHE_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15';
const secs = Number(process.env.BENCH_SECS ?? 3);

async function measure(name, op) {
  for (let i = 0; i < 200; i++) await op(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(secs * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 100; i++) await op();
    n += 100;
    now = process.hrtime.bigint();
  }
  const us = Number(now - start) / 1000 / n;
  console.log(`${name.padEnd(44)} ${(1e6 / us).toFixed(0).padStart(8)} gets/s  ${us.toFixed(2).padStart(8)} µs/get`);
}

console.log(`node ${process.version}, ${secs} s per line`);
const memory = await createCache();
await memory.user('42').set('page', 'value', 600);
await measure('component, memory store (sync bindings)', () => memory.user('42').get('page'));

if (!jspiAvailable()) {
  console.log('no WebAssembly.Suspending here: the Redis lines need `npm run bench` (the pinned Node 24)');
} else {
  const root = `jsbench_${randomUUID().replaceAll('-', '')}`;
  const store = await RedisStore.connect(url);
  const cache = await createCache({ store, bindings: 'jspi', settings: { namespaceRoot: root } });
  await cache.user('42').set('page', 'value', 600);
  const version = await cache.versionOf('42');
  const key = `${root}:42:v${version}:data:page`;
  const plain = createClient({ url });
  await plain.connect();
  await measure('plain redis client GET (same key)', () => plain.get(key));
  await measure('component, Redis store (JSPI bindings)', () => cache.user('42').get('page'));
  await plain.sendCommand(['DEL', key, `${root}_user_version:42`, `${root}_namespace_floor`, `${root}_version_clock`, `${root}:42:v${version}:bytes`]);
  await plain.close();
  await store.close();
}
