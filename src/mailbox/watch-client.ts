import type { Stream } from '@libp2p/interface'
import { errorMessage, isOctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import { MailboxStatus } from '../wire/mailbox.pb.js'
import { callWatch, type WatchSession } from './protocol-call.js'

/** Called when a watched mailbox stored something for us; `count` is what it holds for us now. */
export type NotifyListener = (mailbox: string, count: number) => void

export interface WatchClientInit {
  /** our PeerId: whose mailbox we watch */
  self: string
  /** opens a /octet/mailbox stream to the peer (dialling it if need be), within `signal` */
  openStream: (peer: string, signal: AbortSignal) => Promise<Stream>
  log: Logger
  /** waiting for the mailbox's answer to WATCH (ms) */
  responseTimeout: number
  renewInterval: number
  retryFirstDelay: number
  retryMaxDelay: number
  minLifetime: number
}

/** What the watching side did since start, for tests and logs. */
export interface WatchClientCounters {
  /** watches a mailbox accepted (renewals included) */
  registered: number
  /** WATCHes a mailbox answered with a refusal */
  refused: number
  /** watches that could not be registered or broke (dial, stream, bad frames) */
  failed: number
  /** notifies received */
  notifies: number
}

interface Loop {
  controller: AbortController
  /** cuts a backoff short: the peer connected again */
  wake: () => void
  task: Promise<void>
  /** a watch is registered at the peer right now */
  active: boolean
}

/**
 * The watching side of WATCH: keeps one held-open watch at each mailbox peer
 * of a set the caller chooses (the peers closest to our key), renews each
 * every renewInterval, registers again at once when a mailbox ends a watch,
 * and with backoff when one fails — sooner when the peer connects again.
 * Notifies go to one listener.
 */
export class WatchClient {
  readonly counters: WatchClientCounters = { registered: 0, refused: 0, failed: 0, notifies: 0 }
  private readonly loops = new Map<string, Loop>()
  private listener: NotifyListener = () => {}

  constructor (private readonly init: WatchClientInit) {}

  /** Peers at which a watch is registered now. */
  active (): string[] {
    return [...this.loops].filter(([, loop]) => loop.active).map(([peer]) => peer)
  }

  /** Peers we keep (or try to keep) a watch at. */
  targets (): string[] {
    return [...this.loops.keys()]
  }

  /** Watch exactly these peers from now on: loops for new ones start, loops for others end. */
  set (peers: string[], listener: NotifyListener): void {
    this.listener = listener
    const wanted = new Set(peers)
    for (const [peer, loop] of this.loops) {
      if (!wanted.has(peer)) {
        loop.controller.abort()
        this.loops.delete(peer)
      }
    }
    for (const peer of wanted) {
      if (!this.loops.has(peer)) this.start(peer)
    }
  }

  /** The peer connected (again): a watch waiting out a backoff is tried now. */
  reconnected (peer: string): void {
    this.loops.get(peer)?.wake()
  }

  /** Ends every watch and waits for the loops to finish. */
  async stop (): Promise<void> {
    const loops = [...this.loops.values()]
    this.loops.clear()
    for (const loop of loops) loop.controller.abort()
    await Promise.allSettled(loops.map(loop => loop.task))
  }

  private start (peer: string): void {
    const controller = new AbortController()
    const loop: Loop = { controller, wake: () => {}, task: Promise.resolve(), active: false }
    this.loops.set(peer, loop)
    loop.task = this.run(peer, loop).catch((err: unknown) => {
      // run() handles its own failures; this is a bug, not a network condition
      this.init.log.warn({ mailbox: peer, err: errorMessage(err) }, 'a mailbox watch loop ended unexpectedly')
    })
  }

  private async run (peer: string, loop: Loop): Promise<void> {
    const { signal } = loop.controller
    const { log, retryFirstDelay, retryMaxDelay, renewInterval, minLifetime } = this.init
    let delay = retryFirstDelay
    while (!signal.aborted) {
      let session: WatchSession | undefined
      const began = Date.now()
      try {
        session = await this.register(peer, signal)
        if (session.response.status !== MailboxStatus.OK) {
          this.counters.refused++
          log.debug({ mailbox: peer, status: session.response.status, reason: session.response.reason }, 'a mailbox refused our watch; it is polled only')
          // a refusal (its watches full, rate limit) does not pass soon: wait long
          await this.sleep(loop, retryMaxDelay)
          continue
        }
        this.counters.registered++
        loop.active = true
        // what it holds already may have come while we were not watching
        if (session.response.count > 0) this.listener(peer, session.response.count)
        const until = AbortSignal.any([signal, AbortSignal.timeout(renewInterval)])
        while (true) {
          let count: number | undefined
          try {
            count = await session.next(until)
          } catch (err) {
            if (until.aborted) break
            throw err
          }
          if (count === undefined) break
          this.counters.notifies++
          this.listener(peer, count)
        }
        loop.active = false
        session.close()
        // renewed, or ended by the mailbox (expiry): register again now, unless it ended at once
        if (Date.now() - began >= minLifetime || signal.aborted) {
          delay = retryFirstDelay
          continue
        }
        this.counters.failed++
        log.debug({ mailbox: peer }, 'a mailbox ended our watch as soon as it began; backing off')
      } catch (err) {
        loop.active = false
        session?.close()
        if (signal.aborted) return
        this.counters.failed++
        log.debug({ mailbox: peer, code: isOctetError(err) ? err.code : undefined, err: errorMessage(err) }, 'mailbox watch failed; trying again later')
      }
      await this.sleep(loop, delay)
      delay = Math.min(delay * 2, retryMaxDelay)
    }
  }

  private async register (peer: string, signal: AbortSignal): Promise<WatchSession> {
    const stream = await this.init.openStream(peer, signal)
    return await callWatch(stream, this.init.self, { signal, timeout: this.init.responseTimeout })
  }

  /** Waits `ms`, or less when the loop is woken (reconnect) or ended. */
  private async sleep (loop: Loop, ms: number): Promise<void> {
    const { signal } = loop.controller
    if (signal.aborted) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        loop.wake = () => {}
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      signal.addEventListener('abort', done, { once: true })
      loop.wake = done
    })
  }
}
