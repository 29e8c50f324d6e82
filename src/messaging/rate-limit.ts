/** Keys a RateLimiter remembers; beyond it, full buckets and then the least recently used are forgotten. */
const MAX_KEYS = 10_000

/**
 * Token bucket per key: `rate` tokens a second up to `burst`. Buckets of keys
 * that went quiet are dropped so a flood of fresh PeerIds cannot grow memory;
 * past MAX_KEYS the least recently used go too (a forgotten key starts over
 * with a full bucket), so that a flood of keys whose buckets never fill
 * again does not pay for a full scan on every new key.
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
    const bucket = this.refilled(key)
    const allowed = bucket.tokens >= Math.min(count, this.burst)
    if (allowed) bucket.tokens -= count
    this.trim()
    return allowed
  }

  /** Gives back tokens taken for something that did not happen after all (never above the burst). */
  refund (key: string, count: number): void {
    const bucket = this.refilled(key)
    bucket.tokens = Math.min(this.burst, bucket.tokens + count)
    this.trim()
  }

  /** The key's bucket, refilled to now, as its most recently used. */
  private refilled (key: string): { tokens: number, at: number } {
    const now = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.rate / 1000)
    bucket.at = now
    this.buckets.delete(key)
    this.buckets.set(key, bucket)
    return bucket
  }

  private trim (): void {
    if (this.buckets.size <= MAX_KEYS) return
    const now = this.now()
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.rate / 1000 >= this.burst) this.buckets.delete(key)
    }
    // down to 90 %, oldest first, so that the next new keys do not scan again
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= MAX_KEYS * 0.9) break
      this.buckets.delete(key)
    }
  }
}
