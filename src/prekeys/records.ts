import { peerIdFromString } from '@libp2p/peer-id'
import type { Selectors, Validators } from '@libp2p/kad-dht'
import { verifyBundle, type VerifiedBundle } from '../crypto/bundle.js'
import { OctetError } from '../errors.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../wire/prekeys.pb.js'
import { PREKEY_RECORD_NAMESPACE } from './constants.js'

const PREFIX = `/${PREKEY_RECORD_NAMESPACE}/`
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The DHT key of a peer's published bundle: the UTF-8 bytes of `/octet-prekeys/<PeerId>`. */
export function prekeyRecordKey (peerId: string): Uint8Array {
  return encoder.encode(PREFIX + peerId)
}

/**
 * The PeerId a record key names. Only the canonical string form of a PeerId
 * is accepted, so one peer's bundle has exactly one key.
 */
export function peerIdOfRecordKey (key: Uint8Array): string {
  let text: string
  try {
    text = decoder.decode(key)
  } catch (err) {
    throw new OctetError('BAD_BUNDLE', 'prekey record key is not UTF-8', { cause: err })
  }
  if (!text.startsWith(PREFIX)) throw new OctetError('BAD_BUNDLE', `prekey record key does not start with ${PREFIX}`)
  const peerId = text.slice(PREFIX.length)
  let canonical: string
  try {
    canonical = peerIdFromString(peerId).toString()
  } catch (err) {
    throw new OctetError('BAD_BUNDLE', 'prekey record key does not name a PeerId', { cause: err })
  }
  if (canonical !== peerId) throw new OctetError('BAD_BUNDLE', `prekey record key names ${peerId}, not in its canonical form ${canonical}`)
  return peerId
}

/**
 * Checks a record under `/octet-prekeys/<PeerId>`: the value must be a bundle
 * of that PeerId, signed by its key, not expired (BAD_BUNDLE, BAD_SIGNATURE).
 * kad-dht runs it before storing a record a peer PUTs to us, on every record
 * a GET brings back, and on our own stored copy before using it.
 */
export async function validatePrekeyRecord (key: Uint8Array, value: Uint8Array, now = Date.now()): Promise<VerifiedBundle> {
  return await verifyBundle(value, peerIdOfRecordKey(key), now)
}

/**
 * Of several records for one key (all validated first), the index of the one
 * issued last: a republished bundle replaces the ones before it. Never throws:
 * a record that does not decode ranks last.
 */
export function selectPrekeyRecord (_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0
  let bestIssuedAt = -1n
  records.forEach((record, i) => {
    const issuedAt = issuedAtOf(record)
    if (issuedAt > bestIssuedAt) {
      best = i
      bestIssuedAt = issuedAt
    }
  })
  return best
}

function issuedAtOf (record: Uint8Array): bigint {
  try {
    return PrekeyBundle.decode(SignedPrekeyBundle.decode(record).body).issuedAt
  } catch {
    return -1n
  }
}

/** For NodeInit.dhtValidators: kad-dht refuses records of a namespace without a validator. */
export const prekeyValidators: Validators = {
  [PREKEY_RECORD_NAMESPACE]: async (key, value) => { await validatePrekeyRecord(key, value) }
}

/** For NodeInit.dhtSelectors. */
export const prekeySelectors: Selectors = {
  [PREKEY_RECORD_NAMESPACE]: selectPrekeyRecord
}

/**
 * The same validators, each refusal told to `onRefused` (with the error's
 * code) before it is thrown on to kad-dht: the DHT's refusals of bad records
 * are the part of its abuse octet can see, and count.
 */
export function reportingValidators (validators: Validators, onRefused: (code: string, err: unknown) => void): Validators {
  return Object.fromEntries(Object.entries(validators).map(([namespace, validate]) => [namespace, async (key: Uint8Array, value: Uint8Array) => {
    try {
      await validate(key, value)
    } catch (err) {
      onRefused(err instanceof OctetError ? err.code : 'INVALID_RECORD', err)
      throw err
    }
  }]))
}
