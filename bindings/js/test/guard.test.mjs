// The synchronous bindings cannot wait for a Promise: an import that returns
// one is an immediate error, never a silent miss or a lost write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore, checkComponentVersion, createCache, WIT_VERSION } from '../index.js';

/** A memory store whose `store.get` and `batch.get-many` answer through a Promise. */
function promisingStore() {
  const inner = new MemoryStore();
  return {
    imports() {
      const imports = inner.imports();
      return {
        ...imports,
        store: { ...imports.store, set: async (...args) => imports.store.set(...args) },
        batch: { ...imports.batch, getMany: async (...args) => imports.batch.getMany(...args) },
      };
    },
  };
}

test('a Promise-returning import on the sync bindings is an immediate error', async () => {
  const cache = await createCache({ store: promisingStore() });
  await assert.rejects(cache.global().get('k'), /import batch\.getMany returned a Promise.*synchronous bindings/s);
  await assert.rejects(cache.global().set('k', 'v'), /import store\.set returned a Promise/);
  // The failed calls took their instance with them; the cache goes on with a new one.
  await assert.rejects(cache.global().get('k'), /returned a Promise/);
  assert.equal(await cache.global().add('n', '1'), true);
});

test('errors carry the WIT error case', async () => {
  const cache = await createCache();
  await assert.rejects(cache.global().incr('missing'), (e) => e.name === 'NscacheError' && e.code === 'not-found');
  await cache.global().set('word', 'abc');
  await assert.rejects(cache.global().incr('word'), (e) => e.code === 'not-an-integer');
  await assert.rejects(createCache({ settings: { keyPrefix: 'a:b' } }), (e) => e.code === 'invalid-argument');
});

test('settings change the layout; the package names its WIT version', async () => {
  const store = new MemoryStore();
  const cache = await createCache({ store, settings: { keyPrefix: 'app', keyVersion: 3n } });
  await cache.global().set('k', 'v', null);
  assert.equal(new TextDecoder().decode(store.imports().store.get('app:3:k')), 'v');
  assert.equal(WIT_VERSION, '0.1.0');
});

test('100 concurrent gets on the sync bindings all answer', async () => {
  const cache = await createCache();
  const u = cache.user('7');
  await u.set('k', 'v');
  const values = await Promise.all(Array.from({ length: 100 }, () => u.getText('k')));
  assert.ok(values.every((v) => v === 'v'));
});

test('a component of another WIT major.minor is refused, naming both versions', () => {
  assert.doesNotThrow(() => checkComponentVersion(['cache', 'nscache:cache/cache@0.1.7', 'nscache:cache/locks@0.1.7']));
  assert.throws(() => checkComponentVersion(['nscache:cache/cache@0.2.0']), /implements nscache:cache@0\.2\.0.*supports nscache:cache@0\.1\.x/);
  assert.throws(() => checkComponentVersion(['nscache:cache/cache@0.1.0', 'nscache:cache/locks@0.2.0']), /0\.1\.0, 0\.2\.0/);
  assert.throws(() => checkComponentVersion(['wasi:cli/run@0.2.0']), /\(none\)/);
});
