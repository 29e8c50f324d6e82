/**
 * What the vector files name in `codec`: each one octet's own encoder and
 * decoder of a wire format (the function a node calls, with its checks), and
 * the helpers that read the files (fixed keys, tagged JSON values).
 *
 * A codec's `encode` takes an entry's input and gives the bytes (or, for
 * names, the text) that go on the wire; its `decode` takes those and gives
 * the input back. Signing codecs find the key by the PeerId the input names
 * (keys.json). A codec without `decode` is one-way (a hash, a signed
 * payload that nobody parses): `oneWay` says why, and which vector checks
 * the other direction.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { PrivateKey as SignalPrivateKey } from '@signalapp/libsignal-client'
import { streamPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { signBundle, verifyBundle, type VerifiedBundle } from '../../src/crypto/bundle.js'
import { seal, unseal } from '../../src/crypto/seal.js'
import {
  decodeControl, decodeGroupMessage, decodeGroupPlaintext, decodeHistoryRequest, decodeHistoryResponse, decodeSenderKey,
  encodeControl, encodeGroupMessage, encodeGroupPlaintext, encodeHistoryRequest, encodeHistoryResponse, encodeSenderKey
} from '../../src/groups/codec.js'
import { HISTORY_PROTOCOL } from '../../src/groups/constants.js'
import { groupMessageId, groupTopic } from '../../src/groups/index.js'
import { decodeMembership, encodeMembership, signMembership, verifyMembershipSignature, type MembershipDoc } from '../../src/groups/membership.js'
import { MAILBOX_PROTOCOL } from '../../src/mailbox/constants.js'
import { proofPayload, signProof, verifyProof, type ProofInput } from '../../src/mailbox/proof.js'
import { decodeChallenge, decodeNotify, decodeProof, decodeRequest, decodeResponse } from '../../src/mailbox/protocol.js'
import { envelopeId } from '../../src/mailbox/store.js'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import { DHT_PROTOCOL } from '../../src/node/constants.js'
import { PREKEY_PROTOCOL } from '../../src/prekeys/constants.js'
import { readBundle, serveBundle } from '../../src/prekeys/protocol.js'
import { peerIdOfRecordKey, prekeyRecordKey } from '../../src/prekeys/records.js'
import {
  decodeBatch, decodeDmFrame, decodeEnvelope, decodePlaintext, decodeReceipt,
  encodeBatch, encodeDmFrame, encodeEnvelope, encodePlaintext, encodeReceipt
} from '../../src/wire/codec.js'
import { FrameReader, writeFrames } from '../../src/wire/framing.js'
import { MailboxChallenge, MailboxNotify, MailboxProof, MailboxRequest, MailboxResponse } from '../../src/wire/mailbox.pb.js'
import keys from './keys.json' with { type: 'json' }
import type { Stream } from '@libp2p/interface'

/** Bytes (a literal of the wire format) or a name (a topic, a protocol id). */
export type Output = Uint8Array | string

export interface VectorCodec {
  encode: (input: any) => Output | Promise<Output>
  /** `input` gives what the receiver knows besides the bytes (its key, the time), never the answer */
  decode?: (output: any, input: any) => unknown
  oneWay?: string
}

// ---------------------------------------------------------------- reading the files

export function fromHex (hex: string | string[]): Uint8Array {
  const text = (Array.isArray(hex) ? hex.join('') : hex).replace(/\s+/g, '')
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error(`not lowercase hex: ${text.slice(0, 40)}`)
  return new Uint8Array(Buffer.from(text, 'hex'))
}

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * A value of a vector file as the code sees it. JSON has no bytes, bigints
 * or maps, so the files tag them: {"$hex": "…" or ["…", …]} (the parts are
 * joined, spaces ignored), {"$bigint": "…"}, {"$map": [[key, value], …]}.
 */
export function revive (value: unknown): any {
  if (Array.isArray(value)) return value.map(revive)
  if (value == null || typeof value !== 'object') return value
  const record = value as Record<string, unknown>
  if ('$hex' in record) return fromHex(record.$hex as string | string[])
  if ('$bigint' in record) return BigInt(record.$bigint as string)
  if ('$map' in record) return new Map((record.$map as Array<[unknown, unknown]>).map(([k, v]) => [revive(k), revive(v)]))
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, revive(v)]))
}

// ---------------------------------------------------------------- fixed keys

export async function ed25519Key (seedHex: string): Promise<Ed25519PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', fromHex(seedHex))
}

/** The libp2p key of a PeerId of keys.json: who signs a proof, a bundle, a membership. */
async function signerOf (peerId: string): Promise<Ed25519PrivateKey> {
  const entry = Object.values(keys.ed25519).find(k => k.peerId === peerId)
  if (entry == null) throw new Error(`no key in keys.json for ${peerId}`)
  return await ed25519Key(entry.seed)
}

export function signalKey (name: string): SignalPrivateKey {
  const entry = (keys.signal as Record<string, { private: string } | undefined>)[name]
  if (entry == null) throw new Error(`no signal key ${name} in keys.json`)
  return SignalPrivateKey.deserialize(fromHex(entry.private) as Uint8Array<ArrayBuffer>)
}

/** seal() with its fresh ephemeral key replaced by a fixed one, for once: the seal is then reproducible. */
function withEphemeral<T> (ephemeral: SignalPrivateKey, run: () => T): T {
  const generate = Object.getOwnPropertyDescriptor(SignalPrivateKey, 'generate')
  if (generate == null) throw new Error('libsignal PrivateKey.generate is gone: seal() draws its key another way now')
  Object.defineProperty(SignalPrivateKey, 'generate', { ...generate, value: () => ephemeral })
  try {
    return run()
  } finally {
    Object.defineProperty(SignalPrivateKey, 'generate', generate)
  }
}

// ---------------------------------------------------------------- a stream that only records

/** Enough of a libp2p Stream for writeFrames (what is sent) and FrameReader (what arrives). */
class RecordingStream extends EventTarget {
  readonly sent = new Uint8ArrayList()
  send (data: Uint8ArrayList): boolean { this.sent.append(data); return true }
  pause (): void {}
  resume (): void {}
  arrive (bytes: Uint8Array): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data: bytes }))
    this.dispatchEvent(new Event('remoteCloseWrite'))
  }
}

async function writeToStream (frames: Uint8Array[]): Promise<Uint8Array> {
  const stream = new RecordingStream()
  await writeFrames(stream as unknown as Stream, frames)
  return stream.sent.subarray()
}

async function readFromStream (bytes: Uint8Array, maxLength: number): Promise<Uint8Array[]> {
  const stream = new RecordingStream()
  const reader = new FrameReader(stream as unknown as Stream, maxLength)
  stream.arrive(bytes)
  const frames: Uint8Array[] = []
  for (let batch = await reader.nextBatch(); batch.length > 0; batch = await reader.nextBatch()) frames.push(...batch.map(f => f.subarray()))
  reader.dispose()
  return frames
}

/** /octet/prekeys/1.0.0 between two ends of an in-memory stream: what the dialer receives when the server serves `bundle`. */
async function servedBytes (bundle: Uint8Array): Promise<Uint8Array> {
  const [dialer, server] = await streamPair()
  const received = new Uint8ArrayList()
  dialer.addEventListener('message', event => { received.append(event.data) })
  await Promise.all([serveBundle(server, async () => bundle), readBundle(dialer, AbortSignal.timeout(5_000))])
  return received.subarray()
}

/** What the dialer's readBundle makes of `bytes` sent by a server that then closes. */
async function readServed (bytes: Uint8Array): Promise<Uint8Array> {
  const [dialer, server] = await streamPair()
  server.send(bytes)
  await server.close()
  return await readBundle(dialer, AbortSignal.timeout(5_000))
}

// ---------------------------------------------------------------- the codecs

const PROTOCOLS: Record<string, string> = {
  dm: DM_PROTOCOL, mailbox: MAILBOX_PROTOCOL, prekeys: PREKEY_PROTOCOL, groupHistory: HISTORY_PROTOCOL, kad: DHT_PROTOCOL
}

export const codecs: Record<string, VectorCodec> = {
  // /octet/dm/1.0.0 (src/wire/codec.ts)
  envelope: { encode: encodeEnvelope, decode: decodeEnvelope },
  dmFrame: { encode: encodeDmFrame, decode: decodeDmFrame },
  receipt: { encode: encodeReceipt, decode: decodeReceipt },
  plaintext: { encode: encodePlaintext, decode: decodePlaintext },
  plaintextUnpadded: { encode: p => encodePlaintext(p, { padBlock: 0 }), decode: decodePlaintext },
  batch: { encode: encodeBatch, decode: decodeBatch },

  // /octet/mailbox/1.0.0 (src/mailbox/protocol.ts: nodes encode these frames with the generated encoders, and decode them with these functions)
  mailboxRequest: { encode: MailboxRequest.encode, decode: decodeRequest },
  mailboxChallenge: { encode: MailboxChallenge.encode, decode: decodeChallenge },
  mailboxProof: { encode: MailboxProof.encode, decode: decodeProof },
  mailboxResponse: { encode: MailboxResponse.encode, decode: decodeResponse },
  mailboxNotify: { encode: MailboxNotify.encode, decode: decodeNotify },
  // src/mailbox/proof.ts
  proofPayload: { encode: proofPayload, oneWay: 'the mailbox rebuilds the payload from what it knows and verifies; see the proofSignature vectors' },
  proofSignature: {
    encode: async (proof: ProofInput) => await signProof(await signerOf(proof.recipient), proof),
    decode: async (signature: Uint8Array, proof: ProofInput) => await verifyProof(proof, signature) ? proof : 'the signature does not verify'
  },
  envelopeId: { encode: envelopeId, oneWay: 'a sha-256: the caller recomputes it from the sealed bytes (callFetch) and compares' },

  // src/crypto/seal.ts
  seal: {
    encode: (input: { envelope: Uint8Array, recipient: string, identity: string, ephemeral: string }) =>
      withEphemeral(signalKey(input.ephemeral), () => seal(input.envelope, input.recipient, signalKey(input.identity).getPublicKey().serialize())),
    decode: (sealed: Uint8Array, input: { recipient: string, identity: string }) =>
      ({ ...input, envelope: unseal(sealed, input.recipient, signalKey(input.identity)) })
  },

  // src/crypto/bundle.ts, src/prekeys/records.ts: /octet/prekeys/1.0.0 and the DHT record
  signedPrekeyBundle: {
    encode: async (input: { bundle: VerifiedBundle }) => {
      const { issuedAt, expiresAt, ...rest } = input.bundle
      return await signBundle({ ...rest, issuedAt: BigInt(issuedAt), expiresAt: BigInt(expiresAt) } as any, await signerOf(input.bundle.peerId))
    },
    decode: async (bytes: Uint8Array, input: { now: number, bundle: VerifiedBundle }) =>
      ({ now: input.now, bundle: { ...await verifyBundle(bytes, input.bundle.peerId, input.now) } })
  },
  prekeyRecordKey: { encode: prekeyRecordKey, decode: peerIdOfRecordKey },
  prekeysStream: {
    encode: async (input: { bundle: Uint8Array }) => await servedBytes(input.bundle),
    decode: async (bytes: Uint8Array) => ({ bundle: await readServed(bytes) })
  },

  // groups (src/groups/codec.ts, src/groups/membership.ts)
  membership: {
    encode: async (doc: MembershipDoc) => {
      const { signature: _, ...unsigned } = doc
      return encodeMembership(await signMembership(unsigned, await signerOf(doc.author)))
    },
    decode: async (bytes: Uint8Array) => {
      const doc = decodeMembership(bytes)
      return await verifyMembershipSignature(doc) ? doc : 'the signature does not verify'
    }
  },
  groupMessage: { encode: encodeGroupMessage, decode: decodeGroupMessage },
  groupPlaintext: { encode: encodeGroupPlaintext, decode: decodeGroupPlaintext },
  senderKey: { encode: encodeSenderKey, decode: decodeSenderKey },
  groupControl: { encode: encodeControl, decode: decodeControl },
  historyRequest: { encode: encodeHistoryRequest, decode: decodeHistoryRequest },
  historyResponse: { encode: encodeHistoryResponse, decode: decodeHistoryResponse },

  // names
  groupTopic: { encode: groupTopic, oneWay: 'a hash of the group id: members compute it and subscribe, nobody parses it' },
  groupMessageId: {
    encode: ({ groupId, author, seq }: { groupId: string, author: string, seq: number }) => groupMessageId(groupId, author, seq),
    oneWay: 'a hash: every member computes it from the message it holds, nobody parses it'
  },
  protocolId: {
    encode: (name: string) => PROTOCOLS[name] ?? `no protocol ${name}`,
    oneWay: 'multistream-select matches protocol ids as strings'
  },

  // length-prefixed frames on every stream protocol (src/wire/framing.ts)
  frames: {
    encode: async (input: { frames: Uint8Array[] }) => await writeToStream(input.frames),
    decode: async (bytes: Uint8Array, input: { maxLength: number }) => ({ ...input, frames: await readFromStream(bytes, input.maxLength) })
  }
}
