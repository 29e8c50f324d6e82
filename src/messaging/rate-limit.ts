/**
 * Token bucket per key: `rate` tokens a second up to `burst`. Buckets of keys
 * that went quiet are dropped so a flood of fresh PeerIds cannot grow memory.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly rate: number, private readonly burst: number, private readonly now: () => number = Date.now) {}

  /**
   * Takes `count` tokens (a batch envelope costs one per item). A batch larger
   * than the bucket goes when the bucket is full, and leaves it in debt: the
   * rate holds on average, and no batch size can be refused forever.
   */
  tryTake (key: string, count = 1): boolean {
    const now = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate / 1000)
    bucket.at = now
    const allowed = bucket.tokens >= Math.min(count, this.burst)
    if (allowed) bucket.tokens -= count
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
