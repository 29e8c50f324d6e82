import { OctetError } from '../errors.js'

/*
 * The mailbox side of WATCH: who wants to hear, right away, that an envelope
 * was stored for them. In memory only (a watch is an open stream; nothing of
 * it survives a restart) and bounded: MAX_WATCHES_PER_PEER per recipient,
 * MAX_WATCHES in all, each ended after WATCH_TTL.
 */

export interface WatchLimits {
  /** watches per recipient; a newer one ends the oldest */
  perPeer: number
  /** watches in all; beyond it registration is refused */
  total: number
  /** a watch is ended this long after it began (ms) */
  ttl: number
}

/** One registered watch, as the stream that serves it sees it. */
export interface Watch {
  /** fires when the mailbox ends the watch: expired, displaced by a newer one, or all ended (stop) */
  readonly signal: AbortSignal
  /** takes it out of the registry; idempotent */
  release: () => void
}

export type Registration =
  | { accepted: true, watch: Watch }
  | { accepted: false, reason: string }

interface Entry {
  notify: (count: number) => void
  controller: AbortController
  timer: NodeJS.Timeout
}

export class WatcherRegistry {
  /** per recipient, oldest first (a Set keeps insertion order) */
  private readonly byRecipient = new Map<string, Set<Entry>>()
  private total = 0

  constructor (private readonly limits: WatchLimits) {}

  /** Watches held now. */
  get size (): number {
    return this.total
  }

  /**
   * Adds a watch for `recipient`; `notify` will be called on every store for
   * it (see notify()). Refused when MAX_WATCHES are held and this recipient
   * holds none to give up.
   */
  register (recipient: string, notify: (count: number) => void): Registration {
    let entries = this.byRecipient.get(recipient)
    // a renewal or a reconnect: the newest watch wins, so a peer cannot hold more than its share
    while (entries != null && entries.size >= this.limits.perPeer) {
      const oldest = entries.values().next().value as Entry
      this.end(recipient, oldest, new OctetError('CONFLICT', 'a newer watch of the same peer replaced this one'))
      entries = this.byRecipient.get(recipient)
    }
    if (this.total >= this.limits.total) {
      return { accepted: false, reason: `this mailbox holds ${this.total} watches, its limit; poll instead` }
    }
    const controller = new AbortController()
    const entry: Entry = {
      notify,
      controller,
      timer: setTimeout(() => { this.end(recipient, entry, new OctetError('TIMEOUT', 'the watch expired; register again')) }, this.limits.ttl)
    }
    entry.timer.unref()
    if (entries == null) {
      entries = new Set()
      this.byRecipient.set(recipient, entries)
    }
    entries.add(entry)
    this.total++
    return {
      accepted: true,
      watch: { signal: controller.signal, release: () => { this.remove(recipient, entry) } }
    }
  }

  /**
   * Tells every watcher of `recipient` that it holds `count` envelopes now.
   * Synchronous and never throws: it runs on the store path, which must not
   * wait for a watcher. Returns how many watchers were told, and how many
   * notify callbacks threw (the caller counts and logs them).
   */
  notify (recipient: string, count: number): { told: number, failed: number } {
    const entries = this.byRecipient.get(recipient)
    let told = 0
    let failed = 0
    if (entries == null) return { told, failed }
    for (const entry of entries) {
      try {
        entry.notify(count)
        told++
      } catch {
        failed++
      }
    }
    return { told, failed }
  }

  /** Ends every watch (the service stops). */
  endAll (reason: Error): void {
    for (const [recipient, entries] of [...this.byRecipient]) {
      for (const entry of [...entries]) this.end(recipient, entry, reason)
    }
  }

  private end (recipient: string, entry: Entry, reason: Error): void {
    this.remove(recipient, entry)
    entry.controller.abort(reason)
  }

  private remove (recipient: string, entry: Entry): void {
    const entries = this.byRecipient.get(recipient)
    if (entries?.delete(entry) !== true) return
    clearTimeout(entry.timer)
    this.total--
    if (entries.size === 0) this.byRecipient.delete(recipient)
  }
}
