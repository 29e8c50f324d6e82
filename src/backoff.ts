/** Doubling waits with jitter: the one backoff of reconnects and webhook retries. */
export interface BackoffPolicy {
  baseMs: number
  maxMs: number
}

/**
 * Pause before the next attempt after `failures` attempts in a row brought nothing:
 * base·2^failures capped at max, then "equal jitter" — a uniform pick in [d/2, d] — so the
 * peers that failed together (a network that lost its bootstrap peer, webhooks whose receiver
 * went down) do not come back in lockstep, yet none waits longer than the cap. `random` is in [0, 1).
 */
export function backoffDelay (failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(0, failures), 30))
  return Math.round(exp / 2 + (exp / 2) * random())
}
