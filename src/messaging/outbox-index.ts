import type { StoreOp } from '../store/database.js'
import type { OutboxEntry } from './records.js'

export interface KeyedEntry {
  key: string
  entry: OutboxEntry
}

/**
 * The outbox, mirrored in memory: each pass of the sender reads a peer's
 * entries, and an iterator over level for every pass cost more than the
 * encryption of the message it found. The mirror is loaded once at start and
 * then follows every committed batch (Store.onCommitted), so it never runs
 * ahead of the disk. Keys are `<peer>!<createdAt>!<counter>`: per peer, the
 * insertion order is the key order unless the clock stepped back, which the
 * `sorted` flag catches.
 */
export class OutboxIndex {
  private readonly byPeer = new Map<string, { entries: Map<string, OutboxEntry>, lastKey: string, sorted: boolean }>()

  constructor (private readonly peerOf: (key: string) => string) {}

  load (entries: Iterable<KeyedEntry>): void {
    for (const { key, entry } of entries) this.put(key, entry)
  }

  /** Applies the outbox operations of a committed batch. */
  apply (ops: StoreOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.put(op.key, op.value as OutboxEntry)
      else this.del(op.key)
    }
  }

  /** One peer's entries, oldest first. The entries are shared: callers copy before they change one. */
  entriesOf (peer: string): KeyedEntry[] {
    const slot = this.byPeer.get(peer)
    if (slot == null) return []
    if (!slot.sorted) {
      const ordered = [...slot.entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      slot.entries.clear()
      for (const [key, entry] of ordered) slot.entries.set(key, entry)
      slot.lastKey = ordered[ordered.length - 1]?.[0] ?? ''
      slot.sorted = true
    }
    return [...slot.entries].map(([key, entry]) => ({ key, entry }))
  }

  peers (): string[] {
    return [...this.byPeer.keys()]
  }

  /** Entries and the peers they are for, counted without copying them. */
  depth (): { peers: number, entries: number } {
    let entries = 0
    for (const slot of this.byPeer.values()) entries += slot.entries.size
    return { peers: this.byPeer.size, entries }
  }

  private put (key: string, entry: OutboxEntry): void {
    const peer = this.peerOf(key)
    let slot = this.byPeer.get(peer)
    if (slot == null) {
      slot = { entries: new Map(), lastKey: '', sorted: true }
      this.byPeer.set(peer, slot)
    }
    if (!slot.entries.has(key)) {
      if (key < slot.lastKey) slot.sorted = false
      else slot.lastKey = key
    }
    slot.entries.set(key, entry)
  }

  private del (key: string): void {
    const peer = this.peerOf(key)
    const slot = this.byPeer.get(peer)
    if (slot == null) return
    slot.entries.delete(key)
    if (slot.entries.size === 0) this.byPeer.delete(peer)
  }
}
