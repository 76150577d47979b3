// A store whose every key is put under `prefix`: scenarios share one Redis.
export function prefixed(store, prefix) {
  const p = (k) => prefix + k;
  return {
    imports() {
      const { store: st, batch, atomics } = store.imports();
      return {
        store: {
          ...Object.fromEntries(['get', 'set', 'delete', 'exists', 'expire', 'ttl'].map((n) => [n, (key, ...rest) => st[n](p(key), ...rest)])),
          nowMicros: () => st.nowMicros(),
        },
        batch: {
          getMany: (keys, max) => batch.getMany(keys.map(p), max),
          setMany: (entries, ttl) => batch.setMany(entries.map(([k, v]) => [p(k), v]), ttl),
          deleteMany: (keys) => batch.deleteMany(keys.map(p)),
          getIndirect: (pointer, pre, suffixes, also, max) => batch.getIndirect(p(pointer), p(pre), suffixes, also.map(p), max),
        },
        atomics: {
          ...Object.fromEntries(['increment', 'setIfAbsent', 'swapIf', 'deleteIf'].map((n) => [n, (key, ...rest) => atomics[n](p(key), ...rest)])),
          putCounted: (entries, ttl, counter, ifAbsent) =>
            atomics.putCounted(entries.map(([k, v]) => [p(k), v]), ttl, { ...counter, key: p(counter.key) }, ifAbsent),
        },
      };
    },
  };
}
