import { errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import type { ServiceRun } from '../service-run.js'
import type { MailboxCaller, StoreResult } from './caller.js'
import { HANDOFF_TIMEOUT } from './constants.js'
import type { MailboxCounters } from './counters.js'
import { isCloser } from './distance.js'
import type { MailboxStore } from './store.js'

/*
 * Handoff: envelopes we hold for a recipient move on to the peers closest
 * to it once we are no longer among them (peers joined nearer to its key).
 * It walks the DHT and STOREs through the calling side (caller.ts) and
 * drops from our MailboxStore what a closer peer took; the service runs a
 * round every handoffInterval, and on demand.
 */

export interface HandoffReport {
  /** recipients whose envelopes we hold and checked */
  recipients: number
  /** envelopes stored at closer peers and dropped here */
  moved: number
}

export interface HandoffInit {
  /** this node's PeerId */
  self: string
  /** k: how many peers closest to a recipient hold its envelopes */
  replicas: number
  /** who is closest now, and the STORE that hands an envelope over */
  caller: Pick<MailboxCaller, 'closestPeers' | 'store'>
  /** the service's counters: `handedOff` is added to here */
  counters: MailboxCounters
  /** the service's run: a round starts only within it, and ends with it */
  run: ServiceRun
  log: Logger
  /** work the service's stop() waits for */
  track: (task: Promise<unknown>) => void
}

export class Handoff {
  private current: Promise<HandoffReport> | undefined

  constructor (private readonly init: HandoffInit) {}

  /**
   * For each recipient we hold envelopes for: when we are no longer among the
   * `replicas` peers closest to its key (peers joined nearer to it), move
   * its envelopes to those peers. A handoff moves a copy, never multiplies
   * it: each envelope goes to the closest of them that did not hold it yet
   * (the others answer `duplicate`), and ours is dropped once one took it
   * or all held it already. So envelopes that should not be here (taken
   * within the closeness slack, or before these checks existed) cannot
   * spread, and the receiving peers apply their own checks (closeness,
   * prefix and peer limits, quotas) to what we hand them, as to any STORE.
   * What no peer took stays (and is tried again next round). Concurrent
   * callers share one round.
   */
  async round (mailbox: MailboxStore | undefined, signal?: AbortSignal): Promise<HandoffReport> {
    this.init.run.assertRunning()
    if (this.current == null) {
      this.current = this.once(mailbox, signal).finally(() => { this.current = undefined })
      this.init.track(this.current)
    }
    return await this.current
  }

  private async once (mailbox: MailboxStore | undefined, signal?: AbortSignal): Promise<HandoffReport> {
    if (mailbox == null) return { recipients: 0, moved: 0 }
    const round = this.init.run.signalFor(AbortSignal.timeout(HANDOFF_TIMEOUT), signal)
    const k = this.init.replicas
    const report: HandoffReport = { recipients: 0, moved: 0 }
    for (const recipient of mailbox.recipients()) {
      if (round.aborted) break
      report.recipients++
      let ranked: string[]
      try {
        ranked = await this.init.caller.closestPeers(recipient, k, round)
      } catch (err) {
        this.init.log.debug({ err: errorMessage(err) }, 'handoff: no closest peers for a recipient; keeping its envelopes')
        continue
      }
      const targets = ranked.slice(0, k)
      // with us, fewer than k peers: we are among the closest; or we are closer than the k-th
      const last = targets.at(-1)
      if (targets.length < k || last == null || isCloser(recipient, this.init.self, last)) continue
      report.moved += await this.handOver(mailbox, recipient, targets, round)
    }
    if (report.moved > 0) this.init.log.info(report, 'handed mailbox envelopes to peers closer to their recipients')
    return report
  }

  /** `targets` closest first. */
  private async handOver (mailbox: MailboxStore, recipient: string, targets: string[], signal: AbortSignal): Promise<number> {
    let moved = 0
    let after: string | undefined
    // a peer that refused or failed once this round is not asked again until the next
    const skip = new Set<string>()
    while (!signal.aborted && skip.size < targets.length) {
      const page = await mailbox.list(recipient, { after, limit: 100 })
      for (const envelope of page.envelopes) {
        let placed = false
        let heldByAll = true
        for (const target of targets) {
          if (signal.aborted) break
          if (skip.has(target)) {
            heldByAll = false
            continue
          }
          let result: StoreResult
          try {
            result = await this.init.caller.store(target, recipient, envelope.sealed, signal)
          } catch {
            result = { accepted: false, status: 'BAD_REQUEST', reason: '', count: 0 }
          }
          if (!result.accepted) {
            skip.add(target)
            heldByAll = false
            continue
          }
          if (result.duplicate !== true) {
            placed = true
            break
          }
        }
        if (placed || (heldByAll && !signal.aborted)) {
          const deleted = await mailbox.delete(recipient, [envelope.id])
          moved += deleted
          this.init.counters.handedOff += deleted
        }
      }
      if (!page.more) break
      after = page.cursor
    }
    return moved
  }
}
