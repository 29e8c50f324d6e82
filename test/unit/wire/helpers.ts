import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import { Kind, type Envelope } from '../../../src/wire/codec.js'
import { newMessageId } from '../../../src/wire/ids.js'
import { WIRE_VERSION } from '../../../src/wire/limits.js'
import type { ErrorCode } from '../../../src/errors.js'
import type { PeerId } from '@libp2p/interface'

export async function makePeerIds (count: number, type: 'Ed25519' | 'secp256k1' = 'Ed25519'): Promise<PeerId[]> {
  return Promise.all(Array.from({ length: count }, async () => peerIdFromPrivateKey(await generateKeyPair(type))))
}

export function makeEnvelope (sender: PeerId, recipient: PeerId, overrides: Partial<Envelope> = {}): Envelope {
  return {
    version: WIRE_VERSION,
    id: newMessageId(),
    recipient: recipient.toString(),
    sender: sender.toString(),
    timestamp: 1_700_000_000_000,
    seq: 1,
    kind: Kind.TEXT,
    cipherType: 2,
    ciphertext: new Uint8Array([1, 2, 3, 4]),
    ...overrides
  }
}

/** The code of the OctetError `fn` throws; fails the test when it returns or throws anything else. */
export function thrownCode (fn: () => unknown): ErrorCode {
  try {
    fn()
  } catch (err) {
    if (isOctetError(err)) return err.code
    throw new Error(`expected an OctetError, got ${String(err)}`, { cause: err })
  }
  expect.fail('expected an OctetError, nothing was thrown')
}

export function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/** A length-delimited protobuf field: tag, length, bytes. */
export function lengthDelimited (field: number, bytes: Uint8Array): Uint8Array {
  return new Uint8Array([...varint((field << 3) | 2), ...varint(bytes.byteLength), ...bytes])
}

/** A varint protobuf field. */
export function varintField (field: number, value: number): Uint8Array {
  return new Uint8Array([...varint(field << 3), ...varint(value)])
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}
