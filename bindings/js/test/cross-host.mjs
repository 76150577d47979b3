// One operation through the Node package on Redis (JSPI bindings), for the
// cross-host test (server/tests/cross_host_node.rs):
//   node cross-host.mjs URL PREFIX ROOT get|set|incr|invalidate-user ARGS...
// SCOPE is `global` or `user:ID`. `get` prints the value, exit 4 on a miss (1 is an error).
import { createCache } from '../index.js';
import { RedisStore } from '../redis-store.js';

const [url, prefix, root, op, ...args] = process.argv.slice(2);
const store = await RedisStore.connect(url);
try {
  const cache = await createCache({ store, bindings: 'jspi', settings: { keyPrefix: prefix, namespaceRoot: root } });
  const keyspace = (scope) => (scope === 'global' ? cache.global() : cache.user(scope.slice('user:'.length)));
  switch (op) {
    case 'get': {
      const value = await keyspace(args[0]).getText(args[1]);
      if (value === undefined) process.exitCode = 4;
      else console.log(value);
      break;
    }
    case 'set':
      await keyspace(args[0]).set(args[1], args[2], null);
      break;
    case 'incr':
      console.log(await keyspace(args[0]).incr(args[1]));
      break;
    case 'invalidate-user':
      console.log(String(await cache.invalidateUser(args[0])));
      break;
    default:
      throw new Error(`unknown operation ${op}`);
  }
} finally {
  await store.close();
}
