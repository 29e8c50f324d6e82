/**
 * Named counters of what the node refused or did (bad frames, forged senders,
 * rate limits…): logged as they happen, summed here, shown by GET /v1/stats.
 */
export class Counters {
  private readonly values = new Map<string, number>()

  increment (name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by)
  }

  get (name: string): number {
    return this.values.get(name) ?? 0
  }

  snapshot (): Record<string, number> {
    return Object.fromEntries([...this.values.entries()].sort(([a], [b]) => a.localeCompare(b)))
  }
}
