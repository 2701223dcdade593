/**
 * The call script: what the simulated far ends do. Ranges are real milliseconds; shares are
 * relative weights. Scripts can change at runtime; a call follows the script in force when it
 * was created.
 */
import { between, type Random } from './prng.ts';

/** How the simulated callees behave. */
export interface CallScript {
  /** Seed of the deterministic PRNG. */
  seed: number;
  /** How long a call rings before the callee answers, declines (busy) or gives up (no-answer), in ms. */
  ringMs: readonly [number, number];
  /** How long an answered call lasts, in ms (cut at the call's TimeLimit). */
  talkMs: readonly [number, number];
  /** Relative weights of the outcomes. */
  shares: { answered: number; noAnswer: number; busy: number; failed: number };
  /** Of answered calls placed with machine detection, the share an answering machine takes. */
  machineShare: number;
}

/** The built-in script: a plausible mix with short ring and talk times. */
export const DEFAULT_SCRIPT: CallScript = {
  seed: 1,
  ringMs: [1_000, 4_000],
  talkMs: [5_000, 30_000],
  shares: { answered: 0.6, noAnswer: 0.2, busy: 0.1, failed: 0.1 },
  machineShare: 0.2,
};

/** A partial script, merged over the current one. */
export type ScriptChange = Partial<Omit<CallScript, 'shares'>> & { shares?: Partial<CallScript['shares']> };

/** The script with `change` applied. */
export function mergeScript(base: CallScript, change: ScriptChange): CallScript {
  return { ...base, ...change, shares: { ...base.shares, ...change.shares } };
}

/** What the far end of one call will do. */
export type CallOutcome = 'answered' | 'no-answer' | 'busy' | 'failed';

/** A forced behaviour for one number: an outcome, or `invalid` (the create fails with 21211). */
export type NumberBehaviour = 'answer' | 'no-answer' | 'busy' | 'failed' | 'invalid';

/** The far end's plan for one call, before Timeout and TimeLimit are applied. */
export interface CallPlan {
  outcome: CallOutcome;
  ringMs: number;
  talkMs: number;
  /** Who answers when machine detection asks. */
  answeredBy: 'human' | 'machine_start';
}

function pickOutcome(random: Random, shares: CallScript['shares']): CallOutcome {
  const weighted: Array<[CallOutcome, number]> = [
    ['answered', shares.answered],
    ['no-answer', shares.noAnswer],
    ['busy', shares.busy],
    ['failed', shares.failed],
  ];
  const total = weighted.reduce((sum, [, w]) => sum + Math.max(0, w), 0);
  if (total <= 0) return 'answered';
  let point = random() * total;
  for (const [outcome, weight] of weighted) {
    point -= Math.max(0, weight);
    if (point < 0) return outcome;
  }
  return 'answered';
}

/** Draws one call's plan; a forced number behaviour overrides the drawn outcome. */
export function planCall(script: CallScript, random: Random, forced?: NumberBehaviour): CallPlan {
  // Always draw every value, so forcing one number does not shift the others' draws.
  const drawn = pickOutcome(random, script.shares);
  const ringMs = between(random, script.ringMs);
  const talkMs = between(random, script.talkMs);
  const machine = random() < script.machineShare;
  const outcome: CallOutcome = forced === undefined || forced === 'invalid' ? drawn : forced === 'answer' ? 'answered' : forced;
  return { outcome, ringMs, talkMs, answeredBy: machine ? 'machine_start' : 'human' };
}
