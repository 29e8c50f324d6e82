interface Bucket {
  tokens: number
  /** ms since the Unix epoch when `tokens` was computed */
  at: number
}

/**
 * A token bucket per remote peer: `burst` tokens, one more every `refillMs`.
 * Peers whose bucket is full again carry no information and are forgotten
 * first; past `maxPeers` the least recently seen are, so a flood of fresh
 * PeerIds cannot grow memory (a forgotten peer starts over with a full
 * bucket, which a flood of fresh PeerIds would get anyway).
 */
export class PeerBudget {
  private readonly buckets = new Map<string, Bucket>()

  constructor (
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly maxPeers: number,
    private readonly now: () => number = Date.now
  ) {}

  /** Takes one token for peer; false (and nothing taken) when its bucket is empty. */
  tryTake (peer: string): boolean {
    const now = this.now()
    const bucket = this.buckets.get(peer)
    const tokens = bucket == null ? this.burst : this.refilled(bucket, now)
    // re-inserted, so the map's order is least recently seen first
    this.buckets.delete(peer)
    if (bucket != null && tokens < 1) {
      // unchanged: a refusal neither costs nor delays anything
      this.buckets.set(peer, bucket)
      return false
    }
    this.buckets.set(peer, { tokens: tokens - 1, at: now })
    if (this.buckets.size > this.maxPeers) this.prune(now)
    return true
  }

  get trackedPeers (): number {
    return this.buckets.size
  }

  private refilled (bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) / this.refillMs)
  }

  private prune (now: number): void {
    for (const [peer, bucket] of this.buckets) {
      if (this.refilled(bucket, now) >= this.burst) this.buckets.delete(peer)
    }
    // down to 90 %, so that a flood does not pay for a full scan on every new peer
    const target = Math.floor(this.maxPeers * 0.9)
    for (const peer of this.buckets.keys()) {
      if (this.buckets.size <= target) break
      this.buckets.delete(peer)
    }
  }
}
