/**
 * Preload for `cpu-call --turns` (`node -r .tools-dist/bench/turns-preload.js`): counts the event loop's turns as the
 * callbacks it runs that are not a promise's nor a nextTick's (a socket's read, an immediate, a timer, a thread
 * pool's answer), through async_hooks, in `globalThis.__ccLoopTurns` (process.nextTick's callbacks in `__ccTicks`),
 * and the promises made (`__ccPromises`). The service reads the counters only when they are there (the opt-in's
 * `offer.timing` then has `turns` and `promises`, key event → durable). The hooks make every callback and promise
 * dearer: times taken with this preload are not the service's.
 */
import { createHook } from 'node:async_hooks';

const g = globalThis as { __ccLoopTurns?: number; __ccTicks?: number; __ccPromises?: number };
g.__ccLoopTurns = 0;
g.__ccPromises = 0;
g.__ccTicks = 0;
const macro = new Set<number>();
const ticks = new Set<number>();
createHook({
  init(id, type) {
    if (type === 'PROMISE') g.__ccPromises = (g.__ccPromises ?? 0) + 1;
    else if (type === 'TickObject') ticks.add(id);
    else macro.add(id);
  },
  before(id) {
    if (macro.has(id)) g.__ccLoopTurns = (g.__ccLoopTurns ?? 0) + 1;
    else if (ticks.has(id)) g.__ccTicks = (g.__ccTicks ?? 0) + 1;
  },
  destroy(id) {
    macro.delete(id);
    ticks.delete(id);
  },
}).enable();
