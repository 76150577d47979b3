// The conformance kit on the Node.js package, in-memory store, sync bindings.
import { test } from 'node:test';
import { MemoryStore } from '../index.js';
import { loadKit, runScenario } from './kit.mjs';

const kit = await loadKit();
for (const scenario of kit.scenarios) {
  test(`conformance (memory store, sync bindings): ${scenario.name}`, async () => {
    await runScenario(kit, scenario, { makeStore: () => new MemoryStore() });
  });
}
