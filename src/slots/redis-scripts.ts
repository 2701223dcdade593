/**
 * The Lua scripts of the slot pool (src/slots/lua/*.lua), registered with ioredis
 * `defineCommand`: EVALSHA, falling back to EVAL on NOSCRIPT (a restarted or flushed server).
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { SlotKeys } from './redis-keys.ts';

/** Read one script as shipped; other services may load the same files. */
export function readSlotScript(name: 'acquire' | 'release' | 'withdraw' | 'extend' | 'inspect'): string {
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
}

export type AcquireReply =
  | { held: true }
  | { held: false; /** 0 = head of the queue */ position: number; /** -1: no holder */ nextExpiryMs: number };

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

const commands = {
  ocqSlotsAcquire: { script: 'acquire', numberOfKeys: 4 },
  ocqSlotsRelease: { script: 'release', numberOfKeys: 3 },
  ocqSlotsWithdraw: { script: 'withdraw', numberOfKeys: 3 },
  ocqSlotsExtend: { script: 'extend', numberOfKeys: 1 },
  ocqSlotsInspect: { script: 'inspect', numberOfKeys: 1 },
} as const;

/** Typed calls to the slot scripts on one connection. */
export class SlotScripts {
  constructor(private readonly redis: Redis) {
    for (const [name, { script, numberOfKeys }] of Object.entries(commands)) {
      redis.defineCommand(name, { lua: readSlotScript(script), numberOfKeys });
    }
  }

  async acquire(keys: SlotKeys, attemptId: string, limit: number, ttlMs: number, waitTtlMs: number): Promise<AcquireReply> {
    const { holders, waiters, deadlines, arrivals, wakeChannel } = keys;
    const reply = await this.call('ocqSlotsAcquire')(holders, waiters, deadlines, arrivals, attemptId, limit, ttlMs, waitTtlMs, wakeChannel);
    const [held, position, nextExpiryMs] = integers(reply, 3);
    return held === 1 ? { held: true } : { held: false, position, nextExpiryMs };
  }

  async release(keys: SlotKeys, attemptId: string): Promise<boolean> {
    const reply = await this.call('ocqSlotsRelease')(keys.holders, keys.waiters, keys.deadlines, attemptId, keys.wakeChannel);
    return reply === 1;
  }

  async withdraw(keys: SlotKeys, attemptId: string): Promise<{ released: boolean; dequeued: boolean }> {
    const reply = await this.call('ocqSlotsWithdraw')(keys.holders, keys.waiters, keys.deadlines, attemptId, keys.wakeChannel);
    const [released, dequeued] = integers(reply, 2);
    return { released: released === 1, dequeued: dequeued === 1 };
  }

  async extend(keys: SlotKeys, attemptId: string, ttlMs: number): Promise<boolean> {
    return (await this.call('ocqSlotsExtend')(keys.holders, attemptId, ttlMs)) === 1;
  }

  async inspect(keys: SlotKeys, attemptId = ''): Promise<{ live: number; holds: boolean }> {
    const [live, holds] = integers(await this.call('ocqSlotsInspect')(keys.holders, attemptId), 2);
    return { live, holds: holds === 1 };
  }

  private call(name: keyof typeof commands): ScriptCall {
    const fn = (this.redis as unknown as Record<string, ScriptCall>)[name];
    if (!fn) throw new Error(`slot script ${name} is not defined`);
    return fn.bind(this.redis);
  }
}

/** The first `count` entries of a script's array reply, checked to be integers. */
function integers(reply: unknown, count: 2): [number, number];
function integers(reply: unknown, count: 3): [number, number, number];
function integers(reply: unknown, count: number): number[] {
  if (!Array.isArray(reply) || reply.length < count || !reply.slice(0, count).every(Number.isInteger)) {
    throw new Error(`unexpected slot script reply: ${JSON.stringify(reply)}`);
  }
  return reply.slice(0, count) as number[];
}
