// The conformance kit (tests/conformance/) for the Node.js package: the same
// scenarios.json the Rust hosts run, through createCache() with a store
// wrapped for the kit (fixed clock, faults per import, flags, touched keys).
import { readFile } from 'node:fs/promises';
import { createCache, NscacheError, storeError } from '../index.js';

export const KIT_PATH = new URL('../../../tests/conformance/scenarios.json', import.meta.url);
export const loadKit = async () => JSON.parse(await readFile(KIT_PATH, 'utf8'));

const IMPORTS = {
  store: { get: 'get', set: 'set', delete: 'delete', exists: 'exists', expire: 'expire', ttl: 'ttl', nowMicros: 'now-micros' },
  batch: { getMany: 'get-many', setMany: 'set-many', deleteMany: 'delete-many', getIndirect: 'get-indirect' },
  atomics: { increment: 'increment', setIfAbsent: 'set-if-absent', swapIf: 'swap-if', deleteIf: 'delete-if', putCounted: 'put-counted' },
};

/** The storage keys an import call names. */
function keysOf(iface, name, args) {
  switch (`${iface}.${name}`) {
    case 'store.nowMicros': return [];
    case 'batch.getMany': case 'batch.deleteMany': return args[0];
    case 'batch.setMany': return args[0].map(([k]) => k);
    case 'batch.getIndirect': return [args[0], ...args[3]];
    case 'atomics.putCounted': return [...args[0].map(([k]) => k), args[2].key];
    default: return [args[0]];
  }
}

/** Faults of one step; counts calls per import. */
class Faults {
  constructor(plan = []) {
    this.plan = plan.map((f) => ({ import: f.import, call: f.call === 'all' ? 0 : f.call, with: f.with ?? 'unavailable', fired: false }));
    this.calls = {};
  }
  onCall(name) {
    const n = (this.calls[name] = (this.calls[name] ?? 0) + 1);
    const fault = this.plan.find((f) => (f.import === name || (f.import === '*' && name !== 'profiles.cache-enabled')) && (f.call === 0 || f.call === n));
    if (!fault) return undefined;
    fault.fired = true;
    return fault.with;
  }
  unfired() {
    return this.plan.filter((f) => !f.fired).map((f) => `${f.import} call ${f.call}`);
  }
}

/** A store for the kit around another store (same `imports()` shape). */
export class KitStore {
  constructor(inner, clockMicros) {
    this.inner = inner;
    this.clock = BigInt(clockMicros);
    this.faults = new Faults();
    this.touched = new Set();
    this.disabled = new Set();
    this.raw = inner.imports();
  }
  imports() {
    const out = {};
    for (const [iface, names] of Object.entries(IMPORTS)) {
      out[iface] = {};
      for (const [name, wit] of Object.entries(names)) {
        out[iface][name] = (...args) => {
          for (const k of keysOf(iface, name, args)) this.touched.add(k);
          const fault = this.faults.onCall(`${iface}.${wit}`);
          if (fault) throw storeError(fault, fault === 'not-an-integer' ? undefined : 'injected by the conformance kit');
          if (iface === 'store' && name === 'nowMicros') return this.clock;
          const out = this.raw[iface][name](...args);
          // NSCACHE_KIT_TRACE=1: every import call and its answer on stderr.
          if (process.env.NSCACHE_KIT_TRACE) Promise.resolve(out).then((r) => console.error('import', iface, name, args, '->', r), (e) => console.error('import', iface, name, args, '-> throws', e));
          return out;
        };
      }
    }
    return out;
  }
  cacheEnabled(user) {
    if (this.faults.onCall('profiles.cache-enabled')) throw { payload: 'injected by the conformance kit' };
    return !this.disabled.has(user);
  }
}

// JSON (the kit's encoding) to jco's JavaScript values, per export.
const enc = new TextEncoder();
const bytes = (v) => (typeof v === 'string' ? enc.encode(v) : Uint8Array.from(v.hex.match(/../g) ?? [], (h) => parseInt(h, 16)));
const variant = (v, payload = (x) => x) => (typeof v === 'string' ? { tag: v } : { tag: Object.keys(v)[0], val: payload(Object.values(v)[0]) });
const scope = (v) => variant(v);
const expiry = (v) => variant(v, BigInt);
const big = (v) => BigInt(v);
const same = (v) => v;
const list = (f) => (v) => v.map(f);
const entries = (v) => v.map(([k, x]) => [k, bytes(x)]);
const token = (v) => ({ namespaceVersion: BigInt(v['namespace-version']), tableVersions: v['table-versions'].map(BigInt) });
const U64_SETTINGS = ['key-version', 'default-ttl-ms', 'max-reply-bytes', 'namespace-quota-bytes', 'max-namespace-ttl-ms'];
const settings = (v) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/-([a-z])/g, (_, c) => c.toUpperCase()), U64_SETTINGS.includes(k) ? BigInt(x) : x]));
const str = same;
const SIGNATURES = {
  'cache.get': [scope, str], 'cache.get-many': [scope, list(str)], 'cache.set': [scope, str, bytes, expiry],
  'cache.set-many': [scope, entries, expiry], 'cache.add': [scope, str, bytes, expiry], 'cache.delete': [scope, str],
  'cache.delete-many': [scope, list(str)], 'cache.has-key': [scope, str], 'cache.incr': [scope, str, big],
  'cache.decr': [scope, str, big], 'cache.touch': [scope, str, expiry], 'cache.ttl': [scope, str],
  'cache.persist': [scope, str], 'cache.read-for-update': [scope, str], 'cache.set-at': [scope, str, big, bytes, expiry],
  'locks.lock': [str, str, big], 'locks.unlock': [str, str],
  'invalidation.invalidate-user': [str], 'invalidation.invalidate-table': [str], 'invalidation.invalidate-all': [],
  'invalidation.version-of': [str], 'invalidation.versions-of': [list(str)],
  'queries.query-key': [str, bytes], 'queries.query-lookup': [str, str, bytes, list(str)],
  'queries.query-store': [str, str, bytes, list(str), token, bytes, expiry],
  'config.defaults': [], 'config.configure': [settings],
};
const NO_RESULT = ['queries.query-key', 'config.defaults'];

// jco's values back to the kit's JSON.
const dec = new TextDecoder('utf-8', { fatal: true });
const kebab = (k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export function toJson(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) {
    try {
      return dec.decode(v);
    } catch {
      return { hex: [...v].map((b) => b.toString(16).padStart(2, '0')).join('') };
    }
  }
  if (Array.isArray(v)) return v.map(toJson);
  if (ArrayBuffer.isView(v)) return Array.from(v, toJson);
  if (typeof v === 'object') {
    if (typeof v.tag === 'string' && Object.keys(v).every((k) => k === 'tag' || k === 'val')) {
      return 'val' in v ? { [v.tag]: toJson(v.val) } : v.tag;
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [kebab(k), toJson(x)]));
  }
  return v;
}

/** Call one export as the kit describes it; the result in the kit's encoding. */
export async function kitCall(cache, func, args) {
  const sig = SIGNATURES[func];
  if (!sig) throw new Error(`the kit calls an unknown export ${func}`);
  const values = args.map((a, i) => sig[i](a));
  try {
    const ok = await cache.call(func, ...values);
    return NO_RESULT.includes(func) ? toJson(ok) : { ok: toJson(ok) };
  } catch (e) {
    if (e instanceof NscacheError) return { err: e.code };
    throw e;
  }
}

/** Whether `got` matches `expected` (a remaining-ms may be up to `tolerance` lower). */
export function mismatch(expected, got, tolerance, path = '') {
  if (expected && got && typeof expected === 'object' && typeof got === 'object' && !Array.isArray(expected)) {
    const ek = Object.keys(expected).sort(), gk = Object.keys(got).sort();
    if (ek.join() !== gk.join()) return `${path}: keys ${gk} != ${ek}`;
    for (const k of ek) {
      if (k === 'remaining-ms') {
        if (!(got[k] <= expected[k] && got[k] + tolerance >= expected[k])) return `${path}.${k}: ${got[k]} vs ${expected[k]}`;
        continue;
      }
      const m = mismatch(expected[k], got[k], tolerance, `${path}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  if (Array.isArray(expected) && Array.isArray(got)) {
    if (expected.length !== got.length) return `${path}: ${got.length} items, expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      const m = mismatch(expected[i], got[i], tolerance, `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  return JSON.stringify(expected) === JSON.stringify(got) ? undefined : `${path}: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`;
}

async function snapshot(kitStore) {
  const out = {};
  for (const key of [...kitStore.touched].sort()) {
    const value = await kitStore.raw.store.get(key);
    if (value === undefined) continue;
    const ttl = await kitStore.raw.store.ttl(key);
    out[key] = { value: toJson(value), ttl: ttl.tag === 'forever' ? 'forever' : { 'remaining-ms': Number(ttl.val) } };
  }
  return out;
}

/** Run one scenario; throws with the first difference. `makeStore()` gives a fresh inner store. */
export async function runScenario(kit, scenario, { makeStore, bindings = 'sync', cleanup }) {
  const kitStore = new KitStore(makeStore(), kit['clock-micros']);
  for (const u of scenario['disabled-users'] ?? []) kitStore.disabled.add(u);
  const cache = await createCache({ store: kitStore, cacheEnabled: (u) => kitStore.cacheEnabled(u), bindings });
  const tol = kit['ttl-tolerance-ms'];
  try {
    for (const [i, step] of scenario.steps.entries()) {
      const at = `${scenario.name} step ${i + 1} (${step.call ?? step.host})`;
      if (step.host === 'put') {
        kitStore.touched.add(step.key);
        await kitStore.raw.store.set(step.key, bytes(step.value), undefined);
        continue;
      }
      if (step.host === 'remove') {
        await kitStore.raw.store.delete(step.key);
        continue;
      }
      if (step.host === 'cache-enabled') {
        if (step.enabled) kitStore.disabled.delete(step.user);
        else kitStore.disabled.add(step.user);
        continue;
      }
      kitStore.faults = new Faults(step.fail);
      const got = await kitCall(cache, step.call, step.args ?? []);
      const unfired = kitStore.faults.unfired();
      if (unfired.length) throw new Error(`${at}: planned faults never happened: ${unfired} (calls: ${JSON.stringify(kitStore.faults.calls)})`);
      kitStore.faults = new Faults();
      if ('expect' in step) {
        const m = mismatch(step.expect, got, tol);
        if (m) throw new Error(`${at}: expected ${JSON.stringify(step.expect)}, got ${JSON.stringify(got)} (${m})`);
      }
      if (step.store) {
        const m = mismatch(step.store, await snapshot(kitStore), tol);
        if (m) throw new Error(`${at}: store ${m}`);
      }
    }
    const m = mismatch(scenario.store, await snapshot(kitStore), tol);
    if (m) throw new Error(`${scenario.name} at the end: store ${m}`);
  } finally {
    if (cleanup) await cleanup(kitStore);
  }
}
