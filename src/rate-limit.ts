/** Keys a RateLimiter remembers unless told otherwise. */
export const DEFAULT_MAX_KEYS = 10_000

export interface RateLimiterOptions {
  /** keys remembered (default DEFAULT_MAX_KEYS); beyond it, full buckets and then the least recently used are forgotten */
  maxKeys?: number
  /** ms since the Unix epoch; injected by tests */
  now?: () => number
}

interface Bucket {
  tokens: number
  /** when `tokens` was computed (ms) */
  at: number
}

/**
 * A token bucket per key (a PeerId, an IP, a recipient prefix): `burst` tokens,
 * `perSecond` more a second (fractions are fine: 1 / 1800 is one every half hour). Buckets of keys that went quiet carry nothing and
 * are forgotten first, so a flood of fresh keys cannot grow memory; past
 * `maxKeys` the least recently used go too (a forgotten key starts over with a
 * full bucket, which a fresh key would get anyway), down to 90 %, so that a
 * flood does not pay for a full scan on every new key.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly burst: number
  /** ms per token: exact for the usual rates (10/s is 100 ms), where tokens/ms is not */
  private readonly interval: number
  private readonly maxKeys: number
  private readonly now: () => number

  constructor (perSecond: number, burst: number, options: RateLimiterOptions = {}) {
    if (!(burst > 0) || !(perSecond > 0)) throw new RangeError(`a rate limit needs a positive rate and burst (got ${perSecond}/s, ${burst})`)
    this.burst = burst
    this.interval = 1000 / perSecond
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    this.now = options.now ?? Date.now
  }

  /**
   * Takes `count` tokens (a batch costs one per item); false, and nothing taken
   * or moved, when the bucket holds too few: a refusal neither costs nor delays
   * the refill. A batch larger than the bucket goes when the bucket is full and
   * leaves it in debt: the rate holds on average, and no batch size is refused forever.
   */
  tryTake (key: string, count = 1): boolean {
    const now = this.now()
    const bucket = this.buckets.get(key)
    const tokens = bucket == null ? this.burst : this.refilled(bucket, now)
    // re-inserted either way, so the map's order is least recently used first
    this.buckets.delete(key)
    if (bucket != null && tokens < Math.min(count, this.burst)) {
      this.buckets.set(key, bucket)
      return false
    }
    this.buckets.set(key, { tokens: tokens - count, at: now })
    this.trim(now)
    return true
  }

  /** Gives back tokens taken for something that did not happen after all (never above the burst). */
  refund (key: string, count: number): void {
    const bucket = this.buckets.get(key)
    // a forgotten key has a full bucket already
    if (bucket == null) return
    const now = this.now()
    bucket.tokens = Math.min(this.burst, this.refilled(bucket, now) + count)
    bucket.at = now
  }

  /** Keys whose buckets are remembered now. */
  get trackedKeys (): number {
    return this.buckets.size
  }

  /** A clock that stepped back adds nothing (and takes nothing). */
  private refilled (bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) / this.interval)
  }

  private trim (now: number): void {
    if (this.buckets.size <= this.maxKeys) return
    for (const [key, bucket] of this.buckets) {
      if (this.refilled(bucket, now) >= this.burst) this.buckets.delete(key)
    }
    const target = Math.floor(this.maxKeys * 0.9)
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break
      this.buckets.delete(key)
    }
  }
}
