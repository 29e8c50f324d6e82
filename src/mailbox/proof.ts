import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { OctetError } from '../errors.js'
import { ENVELOPE_ID_BYTES, NONCE_BYTES } from './constants.js'

/**
 * Proof that a FETCH or DELETE comes from the recipient: a signature with the
 * recipient's libp2p key (the one its PeerId embeds) over
 *
 *   "octet-mailbox-proof-v1" 0x00
 *   len ‖ mailbox PeerId (multihash bytes)     who asked: a proof for one mailbox is useless at another
 *   len ‖ recipient PeerId (multihash bytes)   whose envelopes
 *   op (1 byte: 2 FETCH, 3 DELETE)             a FETCH proof cannot delete
 *   len ‖ nonce (32 bytes)                     fresh per request: a proof is good once
 *   len ‖ sha-256(id ‖ id ‖ …) for DELETE, empty for FETCH
 *                                              a DELETE proof names exactly these ids
 *
 * where len is a 4-byte big-endian length. Every field has a fixed place and
 * a length, so no two inputs share a payload.
 */
export const PROOF_LABEL = 'octet-mailbox-proof-v1'

export type ProofOp = 'FETCH' | 'DELETE'

const OP_CODES: Record<ProofOp, number> = { FETCH: 2, DELETE: 3 }

export interface ProofInput {
  /** the mailbox peer the request goes to (its PeerId as the connection authenticated it) */
  mailbox: string
  /** whose envelopes */
  recipient: string
  op: ProofOp
  /** the mailbox's challenge */
  nonce: Uint8Array
  /** DELETE: the ids, in the order they are sent */
  ids?: Uint8Array[]
}

/** sha-256 over the concatenated ids (each ENVELOPE_ID_BYTES long). */
export function idsDigest (ids: Uint8Array[]): Uint8Array {
  const hash = createHash('sha256')
  for (const id of ids) hash.update(id)
  return new Uint8Array(hash.digest())
}

/** The bytes that are signed. INVALID_PEER_ID, BAD_REQUEST for inputs no proof can be made for. */
export function proofPayload (input: ProofInput): Uint8Array {
  const mailbox = peerIdBytes(input.mailbox)
  const recipient = peerIdBytes(input.recipient)
  if (input.nonce.byteLength !== NONCE_BYTES) throw new OctetError('BAD_REQUEST', `a challenge nonce is ${NONCE_BYTES} bytes, not ${input.nonce.byteLength}`)
  const opCode = OP_CODES[input.op] as number | undefined
  if (opCode == null) throw new OctetError('BAD_REQUEST', `no proof for op ${String(input.op)}`)
  const ids = input.ids ?? []
  if (input.op === 'FETCH' && ids.length > 0) throw new OctetError('BAD_REQUEST', 'a FETCH proof names no ids')
  if (ids.some(id => id.byteLength !== ENVELOPE_ID_BYTES)) throw new OctetError('BAD_REQUEST', `envelope ids are ${ENVELOPE_ID_BYTES} bytes`)
  const digest = input.op === 'DELETE' ? idsDigest(ids) : new Uint8Array(0)
  const label = new TextEncoder().encode(PROOF_LABEL)
  const parts: Uint8Array[] = [
    label, Uint8Array.of(0),
    lengthOf(mailbox), mailbox,
    lengthOf(recipient), recipient,
    Uint8Array.of(opCode),
    lengthOf(input.nonce), input.nonce,
    lengthOf(digest), digest
  ]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

/** Signs a proof with the recipient's libp2p private key (ours, when we fetch our own envelopes). */
export async function signProof (privateKey: PrivateKey, input: ProofInput): Promise<Uint8Array> {
  return await privateKey.sign(proofPayload(input))
}

/**
 * Whether `signature` proves `input`: made by the key the recipient's
 * Ed25519 PeerId embeds, over exactly this mailbox, op, nonce and ids.
 * Never throws: anything that does not check out is false.
 */
export async function verifyProof (input: ProofInput, signature: Uint8Array): Promise<boolean> {
  try {
    const recipient = peerIdFromString(input.recipient)
    if (recipient.type !== 'Ed25519') return false
    return await recipient.publicKey.verify(proofPayload(input), signature)
  } catch {
    return false
  }
}

function peerIdBytes (text: string): Uint8Array {
  try {
    return peerIdFromString(text).toMultihash().bytes
  } catch (err) {
    throw new OctetError('INVALID_PEER_ID', `"${text}" is not a PeerId`, { cause: err })
  }
}

function lengthOf (bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, bytes.byteLength)
  return out
}
