import type { PrivateKey, Stream } from '@libp2p/interface'
import { OctetError, errorMessage } from '../errors.js'
import { dialProtocolFindingPeer, parsePeerId, type Dht, type OctetLibp2p } from '../node/index.js'
import type { ServiceRun } from '../service-run.js'
import { MAX_SEALED_BYTES } from '../wire/limits.js'
import { MailboxStatus, type MailboxResponse } from '../wire/mailbox.pb.js'
import {
  CLIENT_MAX_FETCHED_BYTES,
  CLIENT_MAX_FETCHED_ENVELOPES,
  MAILBOX_PROTOCOL,
  MAX_DELETE_IDS,
  MAX_FETCH_LIMIT,
  PROBE_TIMEOUT
} from './constants.js'
import { sortByDistance } from './distance.js'
import { signProof } from './proof.js'
import { callDelete, callFetch, callStore, type FetchedEnvelope } from './protocol-call.js'

/*
 * The calling side of the mailbox service: who holds a recipient's mailbox
 * (a DHT walk), and STORE, FETCH and DELETE at another mailbox, each on a
 * stream of its own (protocol-call.ts), proving our key with a signature
 * where the mailbox asks for one. Every call ends with the service's run.
 */

export interface MailboxCallerInit {
  libp2p: OctetLibp2p
  /** DHT walks towards a recipient's key */
  dht: Dht
  /** signs the proofs of our own FETCHes and DELETEs */
  privateKey: PrivateKey
  /** this node's PeerId: the recipient we fetch and delete for */
  self: string
  /** the service's run: no call starts outside it, and its end aborts every call */
  run: ServiceRun
  /** wait for each frame of an answer; dial a mailbox; walk the DHT */
  responseTimeout: number
  dialTimeout: number
  closestPeersTimeout: number
}

export type MailboxStatusName = 'OK' | 'QUOTA_EXCEEDED' | 'RATE_LIMITED' | 'UNAUTHORIZED' | 'BAD_REQUEST'

/** A mailbox's answer to a STORE. Refusals are answers, not errors. */
export interface StoreResult {
  accepted: boolean
  status: MailboxStatusName
  /** why not, for a person (empty when accepted) */
  reason: string
  /** envelopes the mailbox now holds for the recipient (when accepted) */
  count: number
  /** accepted, and it held these bytes already (absent otherwise, and from mailboxes that do not say) */
  duplicate?: true
}

export class MailboxCaller {
  constructor (private readonly init: MailboxCallerInit) {}

  /**
   * The `count` live peers closest to the recipient's key, closest first,
   * without the recipient and us.
   *
   * kad-dht's FINAL_PEER events list only the peers the walk queried and
   * that answered; and the walk queries a referred peer only when it is
   * closer to the key than the peer that named it. With a sparse routing
   * table (a small network, a node that just joined) the true closest peers
   * can be named by some answer and never queried, so two nodes would
   * disagree on who holds a recipient's mailbox. So the candidates are the
   * peers that answered plus the peers named in answers, ranked by distance;
   * a named-only candidate counts once it is dialled.
   */
  async closestPeers (recipient: string, count: number, signal?: AbortSignal): Promise<string[]> {
    const target = parsePeerId(recipient)
    this.init.run.assertRunning()
    if (count <= 0) return []
    const timeout = AbortSignal.timeout(this.init.closestPeersTimeout)
    let answered: Set<string>
    let named: Set<string>
    try {
      ({ answered, named } = await this.init.dht.walk(target.toMultihash().bytes, this.init.run.signalFor(timeout, signal)))
    } catch (err) {
      throw this.init.run.abortError(signal, timeout, `looking up the peers closest to ${recipient}`) ??
        new OctetError('PEER_NOT_FOUND', `the DHT walk towards ${recipient} failed: ${errorMessage(err)}`, { cause: err })
    }
    const canonical = target.toString()
    const ranked = sortByDistance(canonical, [...new Set([...answered, ...named])].filter(peer => peer !== this.init.self && peer !== canonical))
    const chosen: string[] = []
    let next = 0
    while (chosen.length < count && next < ranked.length) {
      const batch = ranked.slice(next, next + count - chosen.length)
      next += batch.length
      const alive = await Promise.all(batch.map(async peer => answered.has(peer) || await this.reachable(peer, signal)))
      batch.forEach((peer, i) => { if (alive[i] === true) chosen.push(peer) })
    }
    return chosen
  }

  /** Whether a peer named by the DHT (not heard from in this walk) can be dialled. */
  private async reachable (peer: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.init.libp2p.dial(parsePeerId(peer), { signal: this.init.run.signalFor(AbortSignal.timeout(PROBE_TIMEOUT), signal) })
      return true
    } catch {
      return false
    }
  }

  /**
   * Asks a mailbox peer to hold `sealed` for `recipient`. A refusal (quota,
   * rate limit, bad request) is an answer: `accepted` false with the reason.
   * Throws PEER_UNREACHABLE or TIMEOUT when the peer cannot be asked,
   * MALFORMED_FRAME when it answers nonsense, PAYLOAD_TOO_LARGE for an
   * envelope no mailbox takes.
   */
  async store (mailboxPeer: string, recipient: string, sealed: Uint8Array, signal?: AbortSignal): Promise<StoreResult> {
    const canonicalRecipient = parsePeerId(recipient).toString()
    if (sealed.byteLength > MAX_SEALED_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `a sealed envelope of ${sealed.byteLength} bytes; mailboxes take at most ${MAX_SEALED_BYTES}`)
    const response = await this.exchange(mailboxPeer, signal, async (stream, callSignal) =>
      await callStore(stream, canonicalRecipient, sealed, { signal: callSignal, timeout: this.init.responseTimeout }))
    return {
      accepted: response.status === MailboxStatus.OK,
      status: statusName(response.status),
      reason: response.reason,
      count: response.count,
      ...(response.status === MailboxStatus.OK && response.duplicate ? { duplicate: true } : {})
    }
  }

  /**
   * Everything `mailboxPeer` holds for us, oldest first, all pages; each id
   * checked to be the sha-256 of its envelope. UNAUTHORIZED, RATE_LIMITED or
   * BAD_REQUEST when the mailbox refuses; as store() otherwise.
   */
  async fetch (mailboxPeer: string, signal?: AbortSignal): Promise<FetchedEnvelope[]> {
    const mailbox = parsePeerId(mailboxPeer).toString()
    const result = await this.exchange(mailbox, signal, async (stream, callSignal) =>
      await callFetch(stream, { recipient: this.init.self, limit: MAX_FETCH_LIMIT },
        async nonce => await signProof(this.init.privateKey, { mailbox, recipient: this.init.self, op: 'FETCH', nonce }),
        { signal: callSignal, timeout: this.init.responseTimeout, maxEnvelopes: CLIENT_MAX_FETCHED_ENVELOPES, maxBytes: CLIENT_MAX_FETCHED_BYTES }))
    if (result.response.status !== MailboxStatus.OK) throw refusalError(mailbox, 'FETCH', result.response)
    const seen = new Set<string>()
    return result.envelopes.filter(e => {
      const key = Buffer.from(e.id).toString('hex')
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  }

  /** Asks `mailboxPeer` to drop envelopes it held for us; returns how many it dropped. Errors as fetch(). */
  async delete (mailboxPeer: string, ids: Uint8Array[], signal?: AbortSignal): Promise<number> {
    const mailbox = parsePeerId(mailboxPeer).toString()
    const unique = [...new Map(ids.map(id => [Buffer.from(id).toString('hex'), id])).values()]
    let deleted = 0
    for (let start = 0; start < unique.length; start += MAX_DELETE_IDS) {
      const chunk = unique.slice(start, start + MAX_DELETE_IDS)
      const response = await this.exchange(mailbox, signal, async (stream, callSignal) =>
        await callDelete(stream, { recipient: this.init.self, ids: chunk },
          async nonce => await signProof(this.init.privateKey, { mailbox, recipient: this.init.self, op: 'DELETE', nonce, ids: chunk }),
          { signal: callSignal, timeout: this.init.responseTimeout }))
      if (response.status !== MailboxStatus.OK) throw refusalError(mailbox, 'DELETE', response)
      deleted += response.count
    }
    return deleted
  }

  /** Opens a stream to the mailbox and runs one exchange on it. */
  private async exchange<T> (mailboxPeer: string, signal: AbortSignal | undefined, run: (stream: Stream, signal: AbortSignal) => Promise<T>): Promise<T> {
    const stream = await this.openStream(mailboxPeer, signal)
    const callSignal = signal == null ? this.init.run.signal : AbortSignal.any([signal, this.init.run.signal])
    return await run(stream, callSignal)
  }

  /** A /octet/mailbox stream to the peer, dialling it if need be. PEER_UNREACHABLE, TIMEOUT, UNAVAILABLE. */
  async openStream (mailboxPeer: string, signal: AbortSignal | undefined): Promise<Stream> {
    this.init.run.assertRunning()
    const id = parsePeerId(mailboxPeer)
    const dialTimeout = AbortSignal.timeout(this.init.dialTimeout)
    try {
      return await dialProtocolFindingPeer(this.init.libp2p, id, MAILBOX_PROTOCOL, this.init.run.signalFor(dialTimeout, signal))
    } catch (err) {
      throw this.init.run.abortError(signal, dialTimeout, `dialling the mailbox ${mailboxPeer}`) ??
        new OctetError('PEER_UNREACHABLE', `cannot reach the mailbox ${mailboxPeer}: ${errorMessage(err)}`, { cause: err })
    }
  }
}

function statusName (status: MailboxStatus): MailboxStatusName {
  switch (status) {
    case MailboxStatus.OK:
    case MailboxStatus.QUOTA_EXCEEDED:
    case MailboxStatus.RATE_LIMITED:
    case MailboxStatus.UNAUTHORIZED:
    case MailboxStatus.BAD_REQUEST:
      return status
    default:
      throw new OctetError('MALFORMED_FRAME', `a mailbox answer with status ${status}`)
  }
}

function refusalError (mailbox: string, op: string, response: MailboxResponse): OctetError {
  const why = response.reason === '' ? response.status : response.reason
  switch (response.status) {
    case MailboxStatus.UNAUTHORIZED:
      return new OctetError('UNAUTHORIZED', `the mailbox ${mailbox} refused our ${op}: ${why}`)
    case MailboxStatus.RATE_LIMITED:
      return new OctetError('RATE_LIMITED', `the mailbox ${mailbox} refused our ${op} for now: ${why}`)
    case MailboxStatus.BAD_REQUEST:
      return new OctetError('BAD_REQUEST', `the mailbox ${mailbox} refused our ${op}: ${why}`)
    default:
      return new OctetError('MALFORMED_FRAME', `the mailbox ${mailbox} answered our ${op} with ${response.status}`)
  }
}
