/**
 * The two directions, each a loop of its own with its own reconnects:
 *
 * octet → IRC: the daemon's event stream, resumed after the last event handled
 * (Last-Event-ID). Each group.message of this group not written by the bridge's own node
 * is said on IRC as `<name> text`; the cursor moves past it once the IRC server confirmed
 * the lines (irc.ts), and is on disk before the next event is read. A daemon restart, a
 * dropped stream or a bridge restart therefore resumes exactly after the last line said.
 *
 * IRC → octet: each channel line is put on disk (state.ts) with an Idempotency-Key, then
 * sent to the group in order; while the daemon is down, lines wait there and go when it is
 * back. A send whose answer was lost is sent again under the same key, which the daemon
 * answers with the message it already made.
 */
import { OctetApiError } from 'octet/client'
import { Backoff, sleep } from './backoff.js'
import { isCtcp, toIrcLines, toOctetText } from './format.js'
import type { IrcClient } from './irc.js'
import { errorText, type Log } from './log.js'
import type { ApiEvent } from 'octet/client'
import { isPermanent, type OctetSide } from './octet.js'
import type { BridgeState } from './state.js'

/** How long stop() lets an event being relayed finish. */
const STOP_GRACE = 5_000

export interface RelayInit {
  octet: OctetSide
  irc: Pick<IrcClient, 'say'>
  state: BridgeState
  groupId: string
  ircLineBytes: number
  log: Log
}

export interface RelayCounts {
  /** octet messages said on IRC */
  toIrc: number
  /** IRC lines the daemon made into group messages */
  toOctet: number
  /** group messages of the bridge's own node, not said on IRC */
  skippedOwn: number
}

export class Relay {
  readonly counts: RelayCounts = { toIrc: 0, toOctet: 0, skippedOwn: 0 }
  private readonly stopping = new AbortController()
  /** aborts what an event being relayed still waits for, STOP_GRACE after stop() */
  private readonly giveUp = new AbortController()
  private loops: Promise<unknown> | undefined
  private wakeSender: (() => void) | undefined
  private self: string | undefined

  constructor (private readonly init: RelayInit) {}

  start (): void {
    this.loops ??= Promise.all([this.octetToIrc(), this.ircToOctet()])
  }

  /**
   * Stops both loops after what each is doing: an event being said on IRC gets STOP_GRACE to
   * be confirmed (and its cursor written), so that a restart does not say it twice.
   */
  async stop (): Promise<void> {
    this.stopping.abort()
    this.wakeSender?.()
    const timer = setTimeout(() => { this.giveUp.abort() }, STOP_GRACE)
    await this.loops
    clearTimeout(timer)
    await this.init.state.flush()
  }

  /** A line said in the channel: on disk, then queued for the group. */
  async fromIrc (nick: string, text: string): Promise<void> {
    if (isCtcp(text)) return
    await this.init.state.enqueue(toOctetText(nick, text))
    this.wakeSender?.()
  }

  private async octetToIrc (): Promise<void> {
    const { octet, state, log } = this.init
    const signal = this.stopping.signal
    const backoff = new Backoff()
    while (!signal.aborted) {
      try {
        this.self ??= await octet.self(signal)
        const after = state.lastEventId
        for await (const event of octet.events(after, signal, () => {
          backoff.reset()
          log.info('octet: event stream open', { after: after ?? 'now', self: this.self ?? '' })
        })) {
          await this.onEvent(event)
          if (signal.aborted) break
        }
        if (!signal.aborted) log.warn('octet: event stream ended', { lastEventId: state.lastEventId ?? 'none' })
      } catch (err) {
        if (signal.aborted) break
        if (err instanceof OctetApiError && err.status === 410) {
          // the events after our cursor are older than the daemon keeps: say so, go on with new ones
          log.error('octet: events after the cursor are no longer kept; messages of that time were not relayed', { lastEventId: state.lastEventId ?? 'none' })
          await state.forgetCursor()
          continue
        }
        log.warn('octet: event stream failed', { error: errorText(err) })
      }
      const delay = backoff.next()
      log.info('octet: reconnecting', { inMs: delay })
      await sleep(delay, signal)
    }
  }

  /** One event: said on IRC when it is a message of our group from someone else, then the cursor moves past it. */
  private async onEvent (event: ApiEvent): Promise<void> {
    const { octet, irc, state, groupId, ircLineBytes, log } = this.init
    const signal = this.stopping.signal
    if (event.type !== 'group.message' || event.data.groupId !== groupId) {
      await state.handled(event.id, false)
      return
    }
    const message = event.data.message
    if (message.author === this.self) {
      // the bridge's own message (an IRC line it posted): saying it on IRC would echo it
      this.counts.skippedOwn++
      await state.handled(event.id, true)
      return
    }
    // begun, the event is finished even when stop() comes meanwhile (within STOP_GRACE)
    const finish = this.giveUp.signal
    const lines = toIrcLines(await octet.nameOf(message.author, finish), message.text, ircLineBytes)
    const backoff = new Backoff()
    for (;;) {
      try {
        await irc.say(lines, finish)
        break
      } catch (err) {
        // not confirmed: said again once IRC is back (the stream is not read meanwhile); when
        // stopping, IRC being down leaves the event to the next start
        if (finish.aborted || signal.aborted) return
        log.warn('irc: lines not confirmed, saying them again', { event: event.id, error: errorText(err) })
        await sleep(backoff.next(), signal)
      }
    }
    this.counts.toIrc++
    await state.handled(event.id, true)
    log.info('relayed octet → irc', { event: event.id, from: message.author, lines: lines.length, total: this.counts.toIrc })
  }

  private async ircToOctet (): Promise<void> {
    const { octet, state, log } = this.init
    const signal = this.stopping.signal
    const backoff = new Backoff()
    let down = false
    while (!signal.aborted) {
      const next = state.pending[0]
      if (next == null) {
        await new Promise<void>(resolve => { this.wakeSender = resolve })
        this.wakeSender = undefined
        continue
      }
      try {
        const made = await octet.send(next.text, next.key, signal)
        if (down) log.info('octet: daemon reachable again', { pending: state.pending.length })
        down = false
        backoff.reset()
        await state.sent(next.key)
        this.counts.toOctet++
        log.info('relayed irc → octet', { key: next.key, replayed: !made, total: this.counts.toOctet, pending: state.pending.length })
      } catch (err) {
        if (signal.aborted) break
        if (isPermanent(err)) {
          log.error('octet: the daemon refused a line; dropped', { key: next.key, status: err.status, code: err.code, error: err.message })
          await state.sent(next.key)
          continue
        }
        if (!down) log.warn('octet: cannot send; lines wait on disk', { pending: state.pending.length, error: errorText(err) })
        down = true
        await backoff.wait(signal)
      }
    }
  }
}
