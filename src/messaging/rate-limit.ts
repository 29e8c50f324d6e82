/**
 * Token bucket per key: `rate` tokens a second up to `burst`. Buckets of keys
 * that went quiet are dropped so a flood of fresh PeerIds cannot grow memory.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now) {}

  tryTake (key: string): boolean {
    const now = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate / 1000)
    bucket.at = now
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    this.buckets.set(key, bucket)
    if (this.buckets.size > 10_000) this.prune(now)
    return allowed
  }

  private prune (now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.rate / 1000 >= this.burst) this.buckets.delete(key)
    }
  }
}
