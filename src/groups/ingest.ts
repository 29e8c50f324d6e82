/**
 * Gossip ingest: the group messages others publish, from the topic, from
 * catch-up or held for a key, checked, decrypted, deduplicated and stored —
 * per sender in seq order. It owns the three ways a message waits:
 *   held:  its sender key has not come yet; kept in memory (bounded) until
 *          it does (retryPending, called by keys.ts);
 *   early: an earlier seq of its sender is missing (a gap); the message is
 *          stored, its event held (the one ordering rule of direct and
 *          group messages, src/messaging/ordering.ts) until the gap fills,
 *          catch-up (catch-up.ts) gives up on it (releaseEarly), or
 *          EARLY_HOLD_MAX passes;
 *   gap:   a new gap is reported through `onGap`, so catch-up asks members.
 * It also owns the group topics: which ones we follow, and the gossipsub
 * verdict on each message (forward only what proved itself).
 */
import { errorMessage, isOctetError } from '../errors.js'
import { EventOrder, type OrderedEvent } from '../messaging/index.js'
import type { PubsubMessage, Verdict } from '../node/index.js'
import type { StoreOp } from '../store/database.js'
import { decodeGroupMessage, decodeGroupPlaintext, encodeGroupMessage, type GroupMessage } from './codec.js'
import { EARLY_HOLD_MAX, MAX_PENDING_PER_GROUP, MAX_TRACKED_AHEAD } from './constants.js'
import { groupTopic, senderKeyName, type GroupContext } from './context.js'
import { groupMessageId } from './ids.js'
import { InFlight } from '../in-flight.js'
import type { GroupMessageRecord, GroupRecord, SenderTrack } from './store.js'

/** What became of one message: a refusal carries the code it is counted under. */
export type IngestResult = 'stored' | 'duplicate' | 'pending' | 'ignored' | { code: string, err?: unknown }

export interface IngestEvents {
  /** A sender's seq skipped (an early message was kept): `prefer` are the peers likely to have the missing ones. */
  onGap: (groupId: string, prefer: string[]) => void
}

interface PendingMessage {
  message: GroupMessage
  bytes: Uint8Array
  source?: string
}

export class GossipIngest {
  /** per group: messages waiting for their sender's key */
  private readonly pending = new Map<string, PendingMessage[]>()
  private readonly inFlight = new InFlight()
  /** group.message events per sender in its seq order; a stream is `<groupId>!<sender>` */
  private readonly order: EventOrder
  private running = false

  constructor (private readonly ctx: GroupContext, private readonly events: IngestEvents) {
    this.order = new EventOrder({
      name: 'group',
      store: ctx.store,
      events: ctx.messenger.events,
      // catch-up asks members after GAP_CATCH_UP_DELAY and waits HISTORY_TIMEOUT for them
      holdMs: EARLY_HOLD_MAX,
      released: async events => await listReleased(ctx, events),
      counters: ctx.messenger.counters,
      log: ctx.log,
      now: ctx.now,
      lock: async (stream, work) => await ctx.lock.run(stream.slice(0, stream.indexOf('!')), work)
    })
  }

  /** Re-arms the events held when we stopped; from now on, follow() subscribes. */
  async start (): Promise<void> {
    await this.order.start()
    this.running = true
  }

  /** group.message events waiting for an earlier message of their sender (GET /metrics). */
  get heldEvents (): number {
    return this.order.heldCount
  }

  /** Leaves every group topic, then waits for the messages being taken in. Idempotent. */
  async stop (): Promise<void> {
    this.running = false
    for (const record of await this.ctx.db.all()) this.ctx.pubsub.unsubscribe(groupTopic(record.id))
    await this.inFlight.idle()
    await this.order.stop()
  }

  /** Subscribes to the group's topic (once started: start() is followed by a follow() of every joined group). */
  follow (groupId: string): void {
    const topic = groupTopic(groupId)
    if (!this.running || this.ctx.pubsub.isSubscribed(topic)) return
    this.ctx.pubsub.subscribe(topic, async message => await this.inFlight.track(this.onGossip(groupId, message)))
  }

  /** Leaves the group's topic and forgets what waited for keys there. */
  unfollow (groupId: string): void {
    this.ctx.pubsub.unsubscribe(groupTopic(groupId))
    this.pending.delete(groupId)
  }

  /** Gossipsub validation of one message on a group's topic: its verdict decides forwarding and score. */
  private async onGossip (groupId: string, pubsubMessage: PubsubMessage): Promise<Verdict> {
    const { ctx } = this
    let message: GroupMessage
    try {
      message = decodeGroupMessage(pubsubMessage.data)
    } catch (err) {
      return this.refuseGossip(isOctetError(err) ? err.code : 'MALFORMED_FRAME', groupId, pubsubMessage, err)
    }
    if (message.groupId !== groupId) return this.refuseGossip('MALFORMED_FRAME', groupId, pubsubMessage, 'a message of another group on this topic')
    // the verdict goes back to gossipsub as soon as the message proved good (it decrypted),
    // so forwarding to the mesh does not wait for our own disk write; a later failure to
    // store it is ours, not the message's
    return await new Promise<Verdict>(resolve => {
      ctx.lock.run(groupId, async () => await this.ingest(groupId, message, pubsubMessage.data, pubsubMessage.propagationSource, () => { resolve('accept') }))
        .then(result => {
          if (typeof result === 'object') {
            resolve(this.refuseGossip(result.code, groupId, pubsubMessage, result.err))
            return
          }
          ctx.count(`group.received.${result}`)
          // stored: proven, and accepted already (onProven); anything else proved nothing
          resolve(result === 'stored' ? 'accept' : 'ignore')
        }, (err: unknown) => {
          ctx.count('group.received.store-failed')
          ctx.log.warn({ groupId, err: errorMessage(err) }, 'could not take a group message')
          resolve('ignore')
        })
    })
  }

  private refuseGossip (code: string, groupId: string, message: PubsubMessage, err: unknown): Verdict {
    const via = message.propagationSource.toString()
    this.ctx.refuse({ counter: `group.rejected.${code}`, peer: via, fields: { groupId, via, code, err: typeof err === 'string' ? err : errorMessage(err) }, message: 'rejected a group message' })
    return 'reject'
  }

  /**
   * Checks, decrypts, dedups and stores one group message (from gossip, from
   * catch-up, or held for its key). Call with the group's lock held.
   */
  async ingest (groupId: string, message: GroupMessage, bytes: Uint8Array, source?: string, onProven?: () => void): Promise<IngestResult> {
    const { ctx } = this
    const { crypto, messenger } = ctx
    const record = await ctx.db.group(groupId)
    if (record?.state !== 'joined') return 'ignored'
    // ours, passed back to us
    if (message.sender === ctx.self) return 'duplicate'
    const doc = ctx.db.doc(record)
    if (!doc.members.includes(message.sender)) return { code: 'NOT_A_MEMBER', err: `${message.sender} is not a member of version ${doc.version}` }
    const track = record.senders[message.sender]
    // below the sender's key as we got it (not meant for us), or already here
    if (isKnown(track, message.seq)) return 'duplicate'
    // the track knows every stored seq of a sender unless its list of early ones overflowed,
    // or this is the sender's first message here: only then ask the database
    if ((track == null || track.ahead.length >= MAX_TRACKED_AHEAD) && await ctx.db.hasMessage(groupId, message.sender, message.seq)) return 'duplicate'
    let plaintextBytes: Uint8Array
    try {
      plaintextBytes = await crypto.groupDecrypt(message.sender, senderKeyName(groupId, message.epoch), message.ciphertext)
    } catch (err) {
      if (isOctetError(err, 'NO_SESSION')) {
        this.hold(groupId, { message, bytes, source })
        return 'pending'
      }
      if (isOctetError(err, 'REPLAYED_MESSAGE')) return 'duplicate'
      return { code: isOctetError(err) ? err.code : 'DECRYPT_FAILED', err }
    }
    let plaintext
    try {
      plaintext = decodeGroupPlaintext(plaintextBytes)
    } catch (err) {
      return { code: 'MALFORMED_FRAME', err }
    }
    // The seq and time that count are the sealed ones (the sender key's signature covers the
    // ciphertext); the outer ones only let a node dedup before decrypting. A copy whose outer
    // ones differ was altered on the way, yet its content is the sender's and its message key
    // is now spent here (the unaltered copy would only decrypt as a replay): it is kept under
    // the sealed values, and the copy is refused, which costs whoever passed it on.
    const { seq, sentAt } = plaintext
    const altered = seq !== message.seq || sentAt !== message.sentAt
    if (altered && isKnown(track, seq)) return { code: 'MALFORMED_FRAME', err: 'the outer seq or time was altered on the way' }
    if (!altered) onProven?.()
    // what catch-up serves is the message as its sender published it
    const published = altered ? encodeGroupMessage({ ...message, seq, sentAt }) : bytes
    const at = ctx.now()
    const stored: GroupMessageRecord = {
      groupId, id: groupMessageId(groupId, message.sender, seq), direction: 'in', author: message.sender, seq, text: plaintext.text, sentAt, receivedAt: at, epoch: message.epoch
    }
    const updated: GroupRecord = { ...record }
    const ops = [...ctx.db.putLog(updated, message.sender, seq, published, doc.version), ctx.db.putMessage(stored)]
    const position = advance(track ?? { contiguous: seq - 1, ahead: [] }, seq)
    // stored now; its event waits while an earlier one of this sender is missing (ordering.ts).
    // A sender's stream starts where its track stood before ordering existed, or before this
    // first message of it here
    const draft = await this.order.draft(senderStream(groupId, message.sender), () => track == null ? seq - 1 : Math.max(track.contiguous, ...track.ahead))
    const newEvents = await draft.admit(seq, { type: 'group.message', data: { groupId, message: stored } }, at)
    const held = newEvents.length === 0
    if (held) ctx.count('group.received.early')
    updated.senders = { ...record.senders, [message.sender]: position.track }
    // the sender key step that decrypted it lands with it
    ops.push(ctx.db.putProgress(updated))
    const order = draft.finish()
    await messenger.events.commit([...ops, ...order.ops, ...await this.order.releasedOps(newEvents)], newEvents, at)
    order.apply()
    ctx.db.remember(updated)
    // a new gap: ask for what is missing (once per held event, not for every message after a gap given up on)
    if (held) this.events.onGap(groupId, [source, message.sender].filter((p): p is string => p != null))
    if (altered) return { code: 'MALFORMED_FRAME', err: 'the outer seq or time was altered on the way; kept under the sealed ones' }
    return 'stored'
  }

  /**
   * Gives up waiting for the gaps before early messages: releases their
   * events now (per sender in seq order), each naming the gap before it.
   * The gaps stay visible in the sender positions, and what fills them later
   * is still taken (its event marked late).
   */
  async releaseEarly (groupId: string): Promise<number> {
    const { ctx } = this
    return await ctx.lock.run(groupId, async () => {
      const released = await this.order.releaseNow(stream => stream.startsWith(`${groupId}!`))
      if (released > 0) ctx.log.info({ groupId, messages: released }, 'gave up waiting for missing group messages; released the later ones')
      return released
    })
  }

  /** A message whose sender key we do not have yet waits (in memory, bounded) for it. */
  private hold (groupId: string, entry: PendingMessage): void {
    const list = this.pending.get(groupId) ?? []
    if (list.some(p => p.message.sender === entry.message.sender && p.message.seq === entry.message.seq)) return
    list.push(entry)
    if (list.length > MAX_PENDING_PER_GROUP) {
      list.shift()
      this.ctx.count('group.pending.dropped')
    }
    this.pending.set(groupId, list)
  }

  /** The sender's key came: what it sent meanwhile, in seq order. Lock held. */
  async retryPending (groupId: string, sender: string): Promise<void> {
    const list = this.pending.get(groupId)
    if (list == null) return
    const waiting = list.filter(p => p.message.sender === sender).sort((a, b) => a.message.seq - b.message.seq)
    if (waiting.length === 0) return
    this.pending.set(groupId, list.filter(p => p.message.sender !== sender))
    for (const { message, bytes, source } of waiting) {
      const result = await this.ingest(groupId, message, bytes, source)
      if (typeof result === 'object') this.refuseHeld(result.code, groupId, message, result.err)
      else this.ctx.count(`group.pending.${result}`)
    }
  }

  private refuseHeld (code: string, groupId: string, message: GroupMessage, err: unknown): void {
    this.ctx.refuse({ counter: `group.rejected.${code}`, peer: message.sender, fields: { groupId, sender: message.sender, seq: message.seq, code, err: typeof err === 'string' ? err : errorMessage(err) }, message: 'refused a group message' })
  }
}

/**
 * The sender's position once `seq` (above `track.contiguous`) arrived.
 * inOrder: it is the next one, and `following` are the seqs that were ahead
 * and now join the contiguous prefix behind it; otherwise it is early and
 * joins `ahead` (of which at most MAX_TRACKED_AHEAD are remembered).
 */
export function advance (track: SenderTrack, seq: number): { track: SenderTrack, inOrder: boolean, following: number[] } {
  if (seq <= track.contiguous) return { track, inOrder: false, following: [] }
  const ahead = new Set(track.ahead)
  if (seq > track.contiguous + 1) {
    ahead.add(seq)
    const sorted = [...ahead].sort((a, b) => a - b)
    return { track: { contiguous: track.contiguous, ahead: sorted.slice(-MAX_TRACKED_AHEAD) }, inOrder: false, following: [] }
  }
  let contiguous = seq
  ahead.delete(seq)
  const following: number[] = []
  while (ahead.delete(contiguous + 1)) {
    contiguous++
    following.push(contiguous)
  }
  return { track: { contiguous, ahead: [...ahead].sort((a, b) => a - b) }, inOrder: true, following }
}

/** The ordering stream of one sender in one group. */
function senderStream (groupId: string, sender: string): string {
  return `${groupId}!${sender}`
}

/** Whether the track says `seq` of its sender is here already (or was never meant for us). */
function isKnown (track: SenderTrack | undefined, seq: number): boolean {
  return track != null && (seq <= track.contiguous || track.ahead.includes(seq))
}

/** Group history lists a message when its event goes out, in that order (GroupStore.listMessage). */
async function listReleased (ctx: GroupContext, events: OrderedEvent[]): Promise<StoreOp[]> {
  const ops: StoreOp[] = []
  for (const event of events) if (event.type === 'group.message') ops.push(...await ctx.db.listMessage(event.data.message))
  return ops
}
