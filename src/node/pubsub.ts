/**
 * Publish/subscribe for groups: gossipsub, and the one module that imports it.
 *
 * `@libp2p/gossipsub` is the libp2p maintainers' build of ChainSafe's
 * gossipsub for libp2p 3 (ChainSafe's own package has no libp2p 3 release
 * yet). Swapping back is the import below.
 *
 * gossipsub does not sign messages (StrictNoSign): nothing about a message,
 * its author included, is known until its topic's handler proved it. Every
 * message octet publishes is a Signal sender-key message, signed by its
 * author's sender key, which the handler checks by decrypting it; a second
 * signature by the libp2p key cost every node one Ed25519 verification per
 * message (6.3 % of all CPU in the 20-node group benchmark), the author one
 * signing, and every copy ~110 bytes. Messages are identified by the SHA-256
 * of their data.
 *
 * Validation is asynchronous: a message is forwarded to the mesh only after
 * the topic's handler said `accept`, which it says only of a message it
 * proved; `reject` costs the peer that passed it on its score (P4, invalid
 * message deliveries) for the topics we score.
 */
import { createHash } from 'node:crypto'
import { gossipsub, TopicValidatorResult, type GossipSub, type GossipsubMessage } from '@libp2p/gossipsub'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { OctetError, errorMessage } from '../errors.js'
import { MiB, SECOND } from '../units.js'

/** An encoded group message is at most ~28 KiB; one gossipsub RPC may carry a few. */
export const MAX_PUBSUB_RPC_BYTES = 1 * MiB

/**
 * Peer score parameters of a scored topic. Invalid messages weigh heavily
 * (the penalty is squared: three rejects put a peer below the graylist
 * threshold, -80) and are forgotten slowly (x0.9 a second); nothing punishes a quiet group (mesh delivery
 * deficits are not scored, chats are bursty).
 */
export const TOPIC_SCORE = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1 * SECOND,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 20,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 100,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5 * SECOND,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.9
} as const

/** Loopback peers are this machine (a testnet): many of them on one IP is not a Sybil attack. */
const IP_COLOCATION_WHITELIST = ['127.0.0.1', '::1']

/**
 * A message's id: the SHA-256 of its data (gossipsub's own rule for unsigned
 * messages, so ids agree between nodes), and its local string form, both
 * with Node's native code. gossipsub's defaults compute the same through
 * multiformats and a JavaScript base64 encoder, on every copy of every
 * message: 3–4 % of the CPU of a 20-node group.
 */
function messageId (message: { data: Uint8Array }): Uint8Array {
  return createHash('sha256').update(message.data).digest()
}

function messageIdString (id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('base64')
}

/**
 * Mesh degree for chat groups, not for a chain's block gossip (gossipsub's
 * defaults: D = 6, up to 12). Every mesh link carries every message once
 * more, and in a group of tens of members most of those copies are
 * duplicates: measured on 20 nodes sharing 2 cores, D = 4 (3–6) and fewer
 * gossip targets took raw fan-out from p50 27 to 10 ms (p99 85 → 34 ms) at
 * 100 % delivery. Lost links are still covered by gossip (IHAVE/IWANT) and by
 * the group history protocol.
 *
 * IDONTWANT only pays for itself for large messages: for a chat message the
 * control frame sent to every mesh peer costs as much as the duplicate it
 * saves (measured: p50 48 → 27 ms without it).
 */
const MESH = {
  D: 4,
  Dlo: 3,
  Dhi: 6,
  Dout: 1,
  Dscore: 2,
  Dlazy: 3,
  idontwantMinDataSize: 16 * 1024
} as const

/** The gossipsub service for createNode's `services`. */
export function pubsubService (): (components: any) => GossipSub {
  return gossipsub({
    globalSignaturePolicy: 'StrictNoSign',
    // a group whose other members are all offline still gets the message into our own history,
    // from which they catch up
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    asyncValidation: true,
    fallbackToFloodsub: false,
    // groups of members behind NATs meet over relayed connections, which libp2p 3 keeps
    // protocols off unless they ask (the relay's limits still apply)
    runOnLimitedConnection: true,
    maxInboundDataLength: MAX_PUBSUB_RPC_BYTES,
    msgIdFn: messageId,
    msgIdToStrFn: messageIdString,
    ...MESH,
    scoreParams: {
      IPColocationFactorWhitelist: new Set(IP_COLOCATION_WHITELIST)
    }
  })
}

/** The parts of the gossipsub implementation that its public interface leaves out. */
interface GossipSubInternals extends GossipSub {
  reportMessageValidationResult: (msgId: string, propagationSource: string, acceptance: TopicValidatorResult) => void
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
  score: { params: { topics: Record<string, unknown> } }
}

/** A message as a topic handler sees it: nothing in it is proven yet. */
export interface PubsubMessage {
  topic: string
  data: Uint8Array
  /** the peer that passed it to us (the author or a forwarder) */
  propagationSource: string
}

/** accept: deliver and forward; reject: drop and penalize the propagation source; ignore: drop. */
export type Verdict = 'accept' | 'reject' | 'ignore'

export type TopicHandler = (message: PubsubMessage) => Promise<Verdict>

const VERDICTS: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore
}

/**
 * Topics, each with one handler that validates and takes its messages, over
 * the node's gossipsub. No gossipsub type leaves this class.
 */
export class Pubsub {
  private readonly handlers = new Map<string, TopicHandler>()
  private readonly gossip: GossipSubInternals
  private listening = false

  constructor (libp2p: Libp2p<{ pubsub: unknown }>) {
    this.gossip = libp2p.services.pubsub as GossipSubInternals
    this.gossip.addEventListener('gossipsub:message', this.onMessage)
    this.listening = true
  }

  /** Subscribes and scores the topic; `handler` decides on every message. One handler per topic. */
  subscribe (topic: string, handler: TopicHandler): void {
    if (this.handlers.has(topic)) throw new OctetError('CONFLICT', `topic ${topic} already has a handler`)
    this.handlers.set(topic, handler)
    this.gossip.score.params.topics[topic] ??= { ...TOPIC_SCORE }
    this.gossip.subscribe(topic)
  }

  unsubscribe (topic: string): void {
    if (!this.handlers.delete(topic)) return
    this.gossip.unsubscribe(topic)
  }

  isSubscribed (topic: string): boolean {
    return this.handlers.has(topic)
  }

  /** Sends `data` to the topic's peers; returns how many it went to (0 is allowed). */
  async publish (topic: string, data: Uint8Array): Promise<number> {
    try {
      const result = await this.gossip.publish(topic, data)
      return result.recipients.length
    } catch (err) {
      throw new OctetError('UNAVAILABLE', `cannot publish on ${topic}: ${errorMessage(err)}`, { cause: err })
    }
  }

  /** Peers known to be subscribed to the topic. */
  subscribers (topic: string): string[] {
    return this.gossip.getSubscribers(topic).map((p: PeerId) => p.toString())
  }

  meshPeers (topic: string): string[] {
    return this.gossip.getMeshPeers(topic)
  }

  /** A peer's gossipsub score as this node computes it. */
  score (peerId: string): number {
    return this.gossip.getScore(peerId)
  }

  stop (): void {
    for (const topic of [...this.handlers.keys()]) this.unsubscribe(topic)
    if (this.listening) this.gossip.removeEventListener('gossipsub:message', this.onMessage)
    this.listening = false
  }

  private readonly onMessage = (event: CustomEvent<GossipsubMessage>): void => {
    const { msg, msgId, propagationSource } = event.detail
    const source = propagationSource.toString()
    const handler = this.handlers.get(msg.topic)
    if (handler == null) {
      // a topic we left
      this.gossip.reportMessageValidationResult(msgId, source, TopicValidatorResult.Ignore)
      return
    }
    const message: PubsubMessage = { topic: msg.topic, data: msg.data, propagationSource: source }
    void handler(message).then(
      verdict => { this.gossip.reportMessageValidationResult(msgId, source, VERDICTS[verdict]) },
      () => { this.gossip.reportMessageValidationResult(msgId, source, TopicValidatorResult.Ignore) }
    )
  }
}
