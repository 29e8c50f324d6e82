/**
 * The only way into and out of the group wire formats (src/wire/groups.proto).
 *
 * Like src/wire/codec.ts, every decoder checks the input's length before
 * decoding (FRAME_TOO_LARGE), turns any decoder failure into MALFORMED_FRAME,
 * validates what protobuf cannot express, and returns copies. Membership
 * versions inside a GroupControl are checked by membership.ts (GROUP_INVALID).
 */
import {
  ControlType,
  GroupControl as PbGroupControl,
  GroupMessage as PbGroupMessage,
  GroupPlaintext as PbGroupPlaintext,
  HistoryRequest as PbHistoryRequest,
  HistoryResponse as PbHistoryResponse,
  HistoryStatus,
  SenderKey as PbSenderKey
} from '../wire/groups.pb.js'
import type { Uint8ArrayList } from 'uint8arraylist'
import {
  GROUP_PAD_BLOCK_BYTES,
  MAX_CONTROL_BYTES,
  MAX_GROUP_CIPHERTEXT_BYTES,
  MAX_GROUP_MESSAGE_BYTES,
  MAX_GROUP_PADDING_BYTES,
  MAX_GROUP_PLAINTEXT_BYTES,
  MAX_GROUP_TEXT_BYTES,
  MAX_HISTORY_FRAME_BYTES,
  MAX_HISTORY_MESSAGES,
  MAX_HISTORY_REASON_BYTES,
  MAX_KNOWN_SENDERS,
  MAX_MEMBERS,
  MEMBERSHIP_CHAIN_LENGTH
} from './constants.js'
import { bytesToText, clipReason, decodeChecked, malformed, textToBytes, tooLarge } from '../wire/checked.js'
import { paddingLength } from '../wire/padding.js'
import { isEd25519PeerId, isGroupId, membershipFromPb, membershipToPb, type MembershipDoc } from './membership.js'

export { ControlType, HistoryStatus } from '../wire/groups.pb.js'

type Bytes = Uint8Array | Uint8ArrayList
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** A validated group message (the data of a gossipsub message on the group's topic). */
export interface GroupMessage {
  groupId: string
  sender: string
  seq: number
  sentAt: number
  epoch: number
  ciphertext: Uint8Array
}

export interface GroupPlaintext {
  text: string
  seq: number
  sentAt: number
}

export interface SenderKey {
  groupId: string
  epoch: number
  distribution: Uint8Array
  nextSeq: number
}

export interface GroupControl {
  type: Exclude<ControlType, ControlType.CONTROL_UNSPECIFIED>
  groupId: string
  chain: MembershipDoc[]
}

export interface HistoryRequest {
  groupId: string
  /** sender → every message up to this seq is held */
  known: Map<string, number>
  limit: number
}

export interface HistoryResponse {
  status: Exclude<HistoryStatus, HistoryStatus.HISTORY_UNSPECIFIED>
  reason: string
  messages: Uint8Array[]
  more: boolean
}

function encodeChecked (what: string, bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.byteLength > maxBytes) tooLarge(`encoded ${what} is ${bytes.byteLength} bytes, the limit is ${maxBytes}`)
  return bytes
}

function toNumber (value: bigint, field: string): number {
  if (value > MAX_SAFE) malformed(`${field} ${value} is larger than 2^53-1`)
  return Number(value)
}

function checkCount (value: number, field: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) malformed(`${field} must be an integer from ${min}, got ${value}`)
}

function checkGroupId (value: string, what: string): void {
  if (!isGroupId(value)) malformed(`${what}: the group id is not 32 lowercase hex digits`)
}

function checkPeer (value: string, what: string): void {
  if (!isEd25519PeerId(value)) malformed(`${what} is not an Ed25519 PeerId`)
}

// ---------------------------------------------------------------- group messages

function checkGroupMessage (m: GroupMessage): GroupMessage {
  checkGroupId(m.groupId, 'group message')
  checkPeer(m.sender, 'group message sender')
  checkCount(m.seq, 'group message seq', 1)
  checkCount(m.sentAt, 'group message sentAt', 1)
  checkCount(m.epoch, 'group message epoch', 1)
  if (!(m.ciphertext instanceof Uint8Array) || m.ciphertext.byteLength === 0) malformed('group message ciphertext is empty')
  if (m.ciphertext.byteLength > MAX_GROUP_CIPHERTEXT_BYTES) tooLarge(`group message ciphertext is ${m.ciphertext.byteLength} bytes, the limit is ${MAX_GROUP_CIPHERTEXT_BYTES}`)
  return { groupId: m.groupId, sender: m.sender, seq: m.seq, sentAt: m.sentAt, epoch: m.epoch, ciphertext: m.ciphertext.slice() }
}

export function encodeGroupMessage (message: GroupMessage): Uint8Array {
  const m = checkGroupMessage(message)
  return encodeChecked('group message', PbGroupMessage.encode({
    groupId: m.groupId, sender: m.sender, seq: BigInt(m.seq), sentAt: BigInt(m.sentAt), epoch: BigInt(m.epoch), ciphertext: m.ciphertext as Uint8Array<ArrayBuffer>
  }), MAX_GROUP_MESSAGE_BYTES)
}

export function decodeGroupMessage (bytes: Bytes): GroupMessage {
  return decodeChecked('group message', bytes, MAX_GROUP_MESSAGE_BYTES, buf => {
    const m = PbGroupMessage.decode(buf)
    return checkGroupMessage({
      groupId: m.groupId,
      sender: m.sender,
      seq: toNumber(m.seq, 'group message seq'),
      sentAt: toNumber(m.sentAt, 'group message sentAt'),
      epoch: toNumber(m.epoch, 'group message epoch'),
      ciphertext: m.ciphertext
    })
  })
}

// ---------------------------------------------------------------- plaintexts

function checkPlaintext (p: GroupPlaintext): GroupPlaintext {
  if (typeof p.text !== 'string') malformed('group text is not a string')
  const size = Buffer.byteLength(p.text, 'utf8')
  if (size > MAX_GROUP_TEXT_BYTES) tooLarge(`group text is ${size} bytes, the limit is ${MAX_GROUP_TEXT_BYTES}`)
  checkCount(p.seq, 'group plaintext seq', 1)
  checkCount(p.sentAt, 'group plaintext sentAt', 1)
  return { text: p.text, seq: p.seq, sentAt: p.sentAt }
}

/** Padded with zero bytes to a multiple of GROUP_PAD_BLOCK_BYTES, so the ciphertext size says little about the text. */
export function encodeGroupPlaintext (plaintext: GroupPlaintext): Uint8Array {
  const p = checkPlaintext(plaintext)
  const message: Partial<PbGroupPlaintext> = { text: textToBytes(p.text), seq: BigInt(p.seq), sentAt: BigInt(p.sentAt) }
  const unpadded = PbGroupPlaintext.encode(message)
  const padded = PbGroupPlaintext.encode({ ...message, padding: new Uint8Array(paddingLength(unpadded.byteLength, GROUP_PAD_BLOCK_BYTES)) })
  return encodeChecked('group plaintext', padded, MAX_GROUP_PLAINTEXT_BYTES)
}

export function decodeGroupPlaintext (bytes: Bytes): GroupPlaintext {
  return decodeChecked('group plaintext', bytes, MAX_GROUP_PLAINTEXT_BYTES, buf => {
    const p = PbGroupPlaintext.decode(buf)
    if (p.padding != null && p.padding.byteLength > MAX_GROUP_PADDING_BYTES) tooLarge('group plaintext padding is too long')
    return checkPlaintext({ text: bytesToText(p.text), seq: toNumber(p.seq, 'group plaintext seq'), sentAt: toNumber(p.sentAt, 'group plaintext sentAt') })
  })
}

// ---------------------------------------------------------------- pairwise payloads

export function encodeSenderKey (key: SenderKey): Uint8Array {
  checkGroupId(key.groupId, 'sender key')
  checkCount(key.epoch, 'sender key epoch', 1)
  checkCount(key.nextSeq, 'sender key nextSeq', 1)
  if (key.distribution.byteLength === 0) malformed('sender key distribution is empty')
  return encodeChecked('sender key', PbSenderKey.encode({
    groupId: key.groupId, epoch: BigInt(key.epoch), distribution: new Uint8Array(key.distribution), nextSeq: BigInt(key.nextSeq)
  }), MAX_CONTROL_BYTES)
}

export function decodeSenderKey (bytes: Bytes): SenderKey {
  return decodeChecked('sender key', bytes, MAX_CONTROL_BYTES, buf => {
    const k = PbSenderKey.decode(buf)
    checkGroupId(k.groupId, 'sender key')
    const key = { groupId: k.groupId, epoch: toNumber(k.epoch, 'sender key epoch'), distribution: new Uint8Array(k.distribution), nextSeq: toNumber(k.nextSeq, 'sender key nextSeq') }
    checkCount(key.epoch, 'sender key epoch', 1)
    checkCount(key.nextSeq, 'sender key nextSeq', 1)
    if (key.distribution.byteLength === 0) malformed('sender key distribution is empty')
    return key
  })
}

const CONTROL_TYPES: ReadonlySet<ControlType> = new Set([ControlType.MEMBERSHIP, ControlType.INVITE, ControlType.ACCEPT, ControlType.DECLINE, ControlType.LEAVE])

function checkControl (c: GroupControl): void {
  if (!CONTROL_TYPES.has(c.type)) malformed(`group control type ${String(c.type)} is not known`)
  checkGroupId(c.groupId, 'group control')
  const chainLength = c.type === ControlType.MEMBERSHIP ? [1, MEMBERSHIP_CHAIN_LENGTH] : c.type === ControlType.INVITE ? [1, 1] : [0, 0]
  if (c.chain.length < (chainLength[0] ?? 0) || c.chain.length > (chainLength[1] ?? 0)) malformed(`group control carries ${c.chain.length} membership versions`)
  for (const [i, doc] of c.chain.entries()) {
    if (doc.groupId !== c.groupId) malformed('group control carries a membership of another group')
    const previous = c.chain[i - 1]
    if (previous != null && doc.version !== previous.version + 1) malformed('group control membership versions are not consecutive')
  }
}

export function encodeControl (control: GroupControl): Uint8Array {
  checkControl(control)
  return encodeChecked('group control', PbGroupControl.encode({
    type: control.type, groupId: control.groupId, chain: control.chain.map(membershipToPb)
  }), MAX_CONTROL_BYTES)
}

export function decodeControl (bytes: Bytes): GroupControl {
  return decodeChecked('group control', bytes, MAX_CONTROL_BYTES, buf => {
    const c = PbGroupControl.decode(buf, { limits: { chain: MEMBERSHIP_CHAIN_LENGTH, chain$: { members: MAX_MEMBERS, admins: MAX_MEMBERS } } })
    const control: GroupControl = { type: c.type as GroupControl['type'], groupId: c.groupId, chain: c.chain.map(membershipFromPb) }
    checkControl(control)
    return control
  })
}

// ---------------------------------------------------------------- history

export function encodeHistoryRequest (request: HistoryRequest): Uint8Array {
  checkGroupId(request.groupId, 'history request')
  if (request.known.size > MAX_KNOWN_SENDERS) tooLarge(`history request names ${request.known.size} senders`)
  return encodeChecked('history request', PbHistoryRequest.encode({
    groupId: request.groupId,
    known: [...request.known].map(([sender, seq]) => ({ sender, seq: BigInt(seq) })),
    limit: request.limit
  }), MAX_HISTORY_FRAME_BYTES)
}

export function decodeHistoryRequest (bytes: Bytes): HistoryRequest {
  return decodeChecked('history request', bytes, MAX_HISTORY_FRAME_BYTES, buf => {
    const r = PbHistoryRequest.decode(buf, { limits: { known: MAX_KNOWN_SENDERS } })
    checkGroupId(r.groupId, 'history request')
    const known = new Map<string, number>()
    for (const position of r.known) {
      checkPeer(position.sender, 'history request sender')
      known.set(position.sender, toNumber(position.seq, 'history request seq'))
    }
    return { groupId: r.groupId, known, limit: Math.min(r.limit === 0 ? MAX_HISTORY_MESSAGES : r.limit, MAX_HISTORY_MESSAGES) }
  })
}

export function encodeHistoryResponse (response: HistoryResponse): Uint8Array {
  return encodeChecked('history response', PbHistoryResponse.encode({
    status: response.status,
    reason: response.reason,
    messages: response.messages.map(m => new Uint8Array(m)),
    more: response.more
  }), MAX_HISTORY_FRAME_BYTES)
}

export function decodeHistoryResponse (bytes: Bytes): HistoryResponse {
  return decodeChecked('history response', bytes, MAX_HISTORY_FRAME_BYTES, buf => {
    const r = PbHistoryResponse.decode(buf, { limits: { messages: MAX_HISTORY_MESSAGES } })
    if (r.status === HistoryStatus.HISTORY_UNSPECIFIED) malformed('a history response without a status')
    return { status: r.status as HistoryResponse['status'], reason: clipReason(r.reason, MAX_HISTORY_REASON_BYTES), messages: r.messages.map(m => new Uint8Array(m)), more: r.more }
  })
}
