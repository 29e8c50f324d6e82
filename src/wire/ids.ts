/**
 * The identifiers every wire format names: message ids (16 random bytes, written as hex in
 * the store and the API) and PeerId strings in their canonical form. Apart from codec.ts
 * because groups and messaging use them where no envelope is coded.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { MAX_PEER_ID_CHARS, MESSAGE_ID_BYTES } from './limits.js'

/** 16 random bytes. */
export type MessageId = Uint8Array

/** Key types libp2p can authenticate a connection with; URL "PeerIds" are not peers. */
const PEER_ID_TYPES: ReadonlySet<string> = new Set(['Ed25519', 'secp256k1', 'RSA'])

export function newMessageId (): MessageId {
  return globalThis.crypto.getRandomValues(new Uint8Array(MESSAGE_ID_BYTES))
}

/** 32 lowercase hex digits. */
export function messageIdToHex (id: MessageId): string {
  // Node's native hex: called several times per message (acks, dedup keys, outbox ids)
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}

/** The message id written as 32 hex digits (either case), or undefined when `hex` is not one. */
export function messageIdFromHex (hex: string): MessageId | undefined {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined
  // a copy: Buffer.from may hand out a slice of its shared pool
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

/**
 * True when `value` is a PeerId string in its canonical form (what
 * `peerId.toString()` gives) for a key type a connection can be authenticated
 * with, so string comparison with a connection's remote PeerId is meaningful.
 */
export function isPeerIdString (value: string): boolean {
  const type = canonicalPeerIdType(value)
  return type != null && PEER_ID_TYPES.has(type)
}

/**
 * The key type of a PeerId string in its canonical form ('Ed25519',
 * 'secp256k1', 'RSA' …); undefined for anything else.
 */
export function canonicalPeerIdType (value: string): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PEER_ID_CHARS) return undefined
  const known = canonicalPeerIds.get(value)
  if (known != null) return known
  try {
    const peerId = peerIdFromString(value)
    if (peerId.toString() !== value) return undefined
    if (canonicalPeerIds.size >= MAX_REMEMBERED_PEER_IDS) canonicalPeerIds.clear()
    canonicalPeerIds.set(value, peerId.type)
    return peerId.type
  } catch {
    return undefined
  }
}

/**
 * PeerIds already proven canonical, with their key type. Every envelope and
 * group message names one or two; decoding them (base58, multihash, key
 * type) showed in profiles at several percent of a message's cost. Only
 * valid strings are kept, and at most a bounded number.
 */
const canonicalPeerIds = new Map<string, string>()
const MAX_REMEMBERED_PEER_IDS = 4096
