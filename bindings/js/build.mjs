// Transpiles the cache component (built by `cargo build`, see host/build.rs)
// into ES modules under gen/, with jco's transpiler (a pinned npm package):
//   gen/sync/  synchronous bindings: imports must return values (memory store)
//   gen/jspi/  JSPI bindings: imports may return Promises (Redis), for Node
//              versions with WebAssembly.Suspending
// NSCACHE_COMPONENT names another component file.
import { transpileBytes } from '@bytecodealliance/jco-transpile';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const componentPath =
  process.env.NSCACHE_COMPONENT ?? join(here, '../../target/wasm-component/nscache_cache.wasm');

const IMPORTS = {
  'nscache:cache/store': ['get', 'set', 'delete', 'exists', 'expire', 'ttl', 'now-micros'],
  'nscache:cache/batch': ['get-many', 'set-many', 'delete-many', 'get-indirect'],
  'nscache:cache/atomics': ['increment', 'set-if-absent', 'swap-if', 'delete-if', 'put-counted'],
  'nscache:cache/profiles': ['cache-enabled'],
};
const EXPORTS = {
  'nscache:cache/cache': ['get', 'get-many', 'set', 'set-many', 'add', 'delete', 'delete-many', 'has-key', 'incr', 'decr', 'touch', 'ttl', 'persist', 'read-for-update', 'set-at'],
  'nscache:cache/locks': ['lock', 'unlock'],
  'nscache:cache/invalidation': ['invalidate-user', 'invalidate-table', 'invalidate-all', 'version-of', 'versions-of'],
  'nscache:cache/queries': ['query-key', 'query-lookup', 'query-store'],
  'nscache:cache/config': ['defaults', 'configure'],
};
const VERSION = '0.1.0';
const list = (m) => Object.entries(m).flatMap(([i, fs]) => fs.map((f) => `${i}@${VERSION}#${f}`));

let wasm;
try {
  wasm = await readFile(componentPath);
} catch (e) {
  console.error(`no component at ${componentPath}: run \`cargo build\` in the workspace first, or set NSCACHE_COMPONENT (${e.message})`);
  process.exit(1);
}
const common = { name: 'nscache', instantiation: { tag: 'async' }, wasiShim: false, noTypescript: false };
const variants = {
  sync: common,
  jspi: { ...common, asyncMode: 'jspi', asyncImports: list(IMPORTS), asyncExports: list(EXPORTS) },
};
await rm(join(here, 'gen'), { recursive: true, force: true });
for (const [name, opts] of Object.entries(variants)) {
  const { files } = await transpileBytes(wasm, opts);
  for (const [file, bytes] of Object.entries(files)) {
    const out = join(here, 'gen', name, file);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, bytes);
  }
}
await writeFile(join(here, 'gen', 'package.json'), '{ "type": "module" }\n');
console.log(`transpiled ${componentPath} (${wasm.length} bytes) into gen/sync and gen/jspi`);
