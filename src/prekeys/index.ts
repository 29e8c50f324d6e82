import { setTimeout as sleep } from 'node:timers/promises'
import type { Connection, Stream } from '@libp2p/interface'
import { verifyBundle, type VerifiedBundle } from '../crypto/bundle.js'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { ServiceRun } from '../service-run.js'
import type { Logger } from '../logger.js'
import { Refusals } from '../refusals.js'
import { RELAYED_CONNECTIONS_OK, dialProtocolFindingPeer, parsePeerId, type Dht, type OctetLibp2p } from '../node/index.js'
import { RateLimiter } from '../rate-limit.js'
import { SECOND } from '../units.js'
import {
  DHT_GET_TIMEOUT,
  FETCH_DIAL_TIMEOUT,
  FETCH_READ_TIMEOUT,
  MAINTENANCE_INTERVAL,
  MAX_DHT_VALUES,
  MAX_INBOUND_PREKEY_STREAMS,
  MAX_OUTBOUND_PREKEY_STREAMS,
  MAX_TRACKED_PEERS,
  ONE_TIME_PREKEY_BURST,
  ONE_TIME_PREKEY_REFILL,
  PREKEY_PROTOCOL,
  PUBLISH_MIN_REPLICAS,
  PUBLISH_RETRY_FIRST,
  PUBLISH_RETRY_MAX,
  PUBLISH_TIMEOUT,
  REPUBLISH_INTERVAL,
  SPARSE_REPUBLISH_INTERVAL
} from './constants.js'
import { readBundle, serveBundle } from './protocol.js'
import { prekeyRecordKey } from './records.js'

export { PREKEY_PROTOCOL } from './constants.js'
export { prekeyRecordKey, prekeySelectors, prekeyValidators, reportingValidators } from './records.js'
export type { VerifiedBundle } from '../crypto/bundle.js'

export interface PrekeyServiceComponents {
  libp2p: OctetLibp2p
  /** our bundle's record in the DHT, and others' (OctetNode.dht) */
  dht: Dht
  crypto: SignalCrypto
  log: Logger
  /** where refusals are counted (/v1/stats) and logged; by default logged here only */
  refusals?: Refusals
}

/** Counters since start, for logs, the API and tests. */
export interface PrekeyStats {
  /** bundles written to peers over /octet/prekeys/1.0.0 */
  bundlesServed: number
  /** inbound streams that failed: the dialer sent bytes, stalled or reset the stream */
  badRequests: number
  /** bundles served without a one-time prekey because the peer had used up its budget */
  rateLimited: number
  /** DHT publishes of our bundle that at least one peer accepted */
  publishes: number
}

/**
 * Prekey bundle distribution: serves fresh bundles (with a one-time prekey)
 * over /octet/prekeys/1.0.0, keeps our bundle (without) published in the DHT
 * under /octet-prekeys/<PeerId>, and fetches other peers' bundles either way.
 * Every bundle that comes back is verified: a VerifiedBundle is bound to the
 * PeerId that was asked for.
 */
export class PrekeyService {
  private readonly counters: PrekeyStats = { bundlesServed: 0, badRequests: 0, rateLimited: 0, publishes: 0 }
  private readonly budget = new RateLimiter(SECOND / ONE_TIME_PREKEY_REFILL, ONE_TIME_PREKEY_BURST, { maxKeys: MAX_TRACKED_PEERS })
  private readonly inbound = new Map<Stream, Promise<void>>()
  private readonly run = new ServiceRun('the prekey service')
  private background: Promise<void> | undefined
  private readonly log: Logger
  private readonly refusals: Refusals

  constructor (private readonly components: PrekeyServiceComponents) {
    this.log = components.log.child({ module: 'prekeys' })
    this.refusals = components.refusals ?? new Refusals({ increment: () => {} }, this.log)
  }

  get stats (): Readonly<PrekeyStats> {
    return { ...this.counters }
  }

  isStarted (): boolean {
    return this.run.running
  }

  /**
   * Serves the protocol and starts publishing our bundle in the background
   * (it waits for the first peer), then keeps it fresh: crypto.maintain()
   * every MAINTENANCE_INTERVAL, a republish after each rotation and every
   * REPUBLISH_INTERVAL. Idempotent.
   */
  async start (): Promise<void> {
    await this.run.serially(async () => {
      if (this.run.running) return
      await this.components.libp2p.handle(PREKEY_PROTOCOL, this.onStream, {
        maxInboundStreams: MAX_INBOUND_PREKEY_STREAMS,
        maxOutboundStreams: MAX_OUTBOUND_PREKEY_STREAMS,
        ...RELAYED_CONNECTIONS_OK
      })
      this.run.begin()
      this.background = this.keepPublished(this.run.signal)
    })
  }

  /** Stops serving, cancels the schedule and aborts in-flight work. Idempotent. */
  async stop (): Promise<void> {
    await this.run.serially(async () => {
      if (!this.run.running) return
      const stopped = this.run.end()
      try {
        await this.components.libp2p.unhandle(PREKEY_PROTOCOL)
      } catch (err) {
        this.log.debug({ err }, 'could not unregister the prekey protocol')
      }
      for (const stream of this.inbound.keys()) stream.abort(stopped)
      await Promise.allSettled([...this.inbound.values(), this.background])
      this.background = undefined
    })
  }

  // ---------------------------------------------------------------- fetching

  /**
   * A fresh bundle from the peer itself, normally with a one-time prekey.
   * libp2p looks its addresses up in the DHT when it is not connected.
   * PEER_UNREACHABLE when the dial or the stream fails, TIMEOUT, BAD_BUNDLE
   * or BAD_SIGNATURE (as verifyBundle) for a bundle that does not check out;
   * INVALID_PEER_ID; UNAVAILABLE once stopped; the reason of `signal`.
   */
  async fetchFromPeer (peerId: string, signal?: AbortSignal): Promise<VerifiedBundle> {
    const id = parsePeerId(peerId)
    this.run.assertRunning()
    const dialTimeout = AbortSignal.timeout(FETCH_DIAL_TIMEOUT)
    let stream: Stream
    try {
      stream = await dialProtocolFindingPeer(this.components.libp2p, id, PREKEY_PROTOCOL, this.run.signalFor(dialTimeout, signal))
    } catch (err) {
      throw this.run.abortError(signal, dialTimeout, `dialling ${peerId} for its prekey bundle`) ??
        new OctetError('PEER_UNREACHABLE', `cannot reach ${peerId} for its prekey bundle: ${errorMessage(err)}`, { cause: err })
    }
    const readTimeout = AbortSignal.timeout(FETCH_READ_TIMEOUT)
    let bytes: Uint8Array
    try {
      bytes = await readBundle(stream, this.run.signalFor(readTimeout, signal))
    } catch (err) {
      throw this.run.abortError(signal, readTimeout, `reading the prekey bundle of ${peerId}`) ?? err
    }
    return await verifyBundle(bytes, peerId, Date.now())
  }

  /**
   * The bundle peerId published in the DHT (no one-time prekey), for when it
   * is offline. Of the records found, the newest that verifies. PEER_NOT_FOUND
   * when there is none, TIMEOUT, BAD_BUNDLE or BAD_SIGNATURE when none of
   * those found verifies.
   */
  async fetchFromDht (peerId: string, signal?: AbortSignal): Promise<VerifiedBundle> {
    parsePeerId(peerId)
    this.run.assertRunning()
    const key = prekeyRecordKey(peerId)
    const timeout = AbortSignal.timeout(DHT_GET_TIMEOUT)
    // every record found, not only the one kad-dht's selector picks (see Dht.getAll)
    const { values, failure } = await this.components.dht.getAll(key, MAX_DHT_VALUES, this.run.signalFor(timeout, signal))

    let best: VerifiedBundle | undefined
    let refusal: unknown
    for (const value of values) {
      try {
        const bundle = await verifyBundle(value, peerId, Date.now())
        if (best == null || bundle.issuedAt > best.issuedAt) best = bundle
      } catch (err) {
        refusal = err
      }
    }
    if (best != null) return best
    if (refusal != null) throw refusal
    if (failure != null) {
      throw this.run.abortError(signal, timeout, `looking up the prekey bundle of ${peerId} in the DHT`) ??
        new OctetError('PEER_NOT_FOUND', `no prekey bundle of ${peerId} found in the DHT: ${errorMessage(failure)}`, { cause: failure })
    }
    throw new OctetError('PEER_NOT_FOUND', `no prekey bundle of ${peerId} in the DHT`)
  }

  // ---------------------------------------------------------------- publishing

  /**
   * Issues a bundle without a one-time prekey and puts it in the DHT: it is
   * kept in our own record store and sent to the peers closest to its key
   * (waiting for the first peer when the routing table is empty). Returns
   * how many peers stored it. TIMEOUT when none did within PUBLISH_TIMEOUT.
   */
  async publish (signal?: AbortSignal): Promise<number> {
    this.run.assertRunning()
    const { libp2p, crypto, dht } = this.components
    const bundle = await crypto.createBundle({ withOneTimePrekey: false })
    const timeout = AbortSignal.timeout(PUBLISH_TIMEOUT)
    let stored: number
    try {
      stored = await dht.put(prekeyRecordKey(libp2p.peerId.toString()), bundle, this.run.signalFor(timeout, signal))
    } catch (err) {
      throw this.run.abortError(signal, timeout, 'publishing our prekey bundle') ??
        new OctetError('INTERNAL', `publishing our prekey bundle failed: ${errorMessage(err)}`, { cause: err })
    }
    if (stored > 0) this.counters.publishes++
    this.log.debug({ stored }, 'published our prekey bundle in the DHT')
    return stored
  }

  /**
   * The schedule: publish at once (retrying with backoff until some peer
   * takes it), maintain the prekeys every MAINTENANCE_INTERVAL, republish
   * after a rotation and every REPUBLISH_INTERVAL. Never rejects.
   */
  private async keepPublished (signal: AbortSignal): Promise<void> {
    let nextPublish = 0
    let nextMaintenance = Date.now() + MAINTENANCE_INTERVAL
    let retry = PUBLISH_RETRY_FIRST
    try {
      while (!signal.aborted) {
        if (Date.now() >= nextMaintenance) {
          nextMaintenance = Date.now() + MAINTENANCE_INTERVAL
          try {
            const report = await this.components.crypto.maintain()
            if (report.signedPreKeyRotated || report.kyberPreKeyRotated) {
              this.log.info(report, 'prekeys rotated; republishing our bundle')
              nextPublish = 0
            }
          } catch (err) {
            if (signal.aborted) return
            this.log.warn({ err }, 'prekey maintenance failed; trying again later')
          }
        }
        if (Date.now() >= nextPublish) {
          let stored = 0
          try {
            stored = await this.publish(signal)
          } catch (err) {
            if (signal.aborted) return
            this.log.debug({ err: errorMessage(err), retryInMs: retry }, 'no peer took our prekey bundle yet')
          }
          if (stored < PUBLISH_MIN_REPLICAS) {
            // too few holders yet (a network still forming, or just us): while we go offline
            // now, senders could not find it. Try again soon, backing off to SPARSE_REPUBLISH_INTERVAL
            nextPublish = Date.now() + retry
            retry = Math.min(retry * 2, stored === 0 ? PUBLISH_RETRY_MAX : SPARSE_REPUBLISH_INTERVAL)
          } else {
            retry = PUBLISH_RETRY_FIRST
            nextPublish = Date.now() + REPUBLISH_INTERVAL
            this.log.info({ stored }, 'our prekey bundle is published in the DHT')
          }
        }
        const wait = Math.max(0, Math.min(nextPublish, nextMaintenance) - Date.now())
        await sleep(wait, undefined, { signal, ref: false })
      }
    } catch (err) {
      if (!signal.aborted) this.log.error({ err }, 'the prekey publishing schedule stopped')
    }
  }

  // ---------------------------------------------------------------- serving

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    const task = this.serve(stream, connection.remotePeer.toString())
      .finally(() => { this.inbound.delete(stream) })
    this.inbound.set(stream, task)
  }

  private async serve (stream: Stream, remotePeer: string): Promise<void> {
    if (!this.run.running) {
      stream.abort(new OctetError('UNAVAILABLE', 'the prekey service stopped'))
      return
    }
    let internal: unknown
    try {
      await serveBundle(stream, async () => {
        const withOneTimePrekey = this.budget.tryTake(remotePeer)
        if (!withOneTimePrekey) {
          this.counters.rateLimited++
          this.refusals.refuse({ counter: 'prekeys.refused.ONE_TIME_PREKEY_BUDGET', level: 'debug', peer: remotePeer, fields: { peer: remotePeer }, message: 'one-time prekey budget used up; serving a bundle without one' })
        }
        try {
          return await this.components.crypto.createBundle({ withOneTimePrekey })
        } catch (err) {
          internal = err
          throw err
        }
      })
      this.counters.bundlesServed++
    } catch (err) {
      if (internal != null) {
        if (this.run.running) this.log.warn({ err: internal, peer: remotePeer }, 'cannot create a prekey bundle')
        return
      }
      if (!this.run.running) return
      this.counters.badRequests++
      const code = isOctetError(err) ? err.code : 'STREAM_ERROR'
      this.refusals.refuse({ counter: `prekeys.rejected.${code}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, code, err: errorMessage(err) }, message: 'prekey stream failed' })
    }
  }
}
