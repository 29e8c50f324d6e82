/**
 * The signed member list of a group, as a chain of versions.
 *
 * Version 1 is made by the creator, its only member and admin. Every later
 * version is made and signed by an admin of the version before it (its
 * `author`), carries that version's hash (`prevHash`, the sha-256 of its
 * encoding) and a version number one higher. `keyEpoch` names the sender keys
 * in use: it becomes the new version's number whenever a member is removed
 * (every remaining member then makes a new sender key), and stays otherwise.
 *
 * The signature is the author's libp2p Ed25519 key (its PeerId embeds the
 * public key) over MEMBERSHIP_SIGNATURE_DOMAIN, a zero byte, and the
 * encoding of the version with an empty signature. Encodings are always
 * made here from the decoded fields, so two nodes hash and verify the same
 * bytes whatever encoding a peer sent.
 *
 * Everything here is a pure function of its inputs (apart from signing with
 * the key given): validation throws an OctetError with code GROUP_INVALID
 * (malformed), GROUP_FORGED (signature, author or previous hash wrong),
 * GROUP_STALE (not newer than what we hold) or GROUP_GAP (a version is
 * missing in between).
 */
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { canonicalPeerIdType } from '../wire/ids.js'
import { MAX_PEER_ID_CHARS } from '../wire/limits.js'
import { Membership } from '../wire/groups.pb.js'
import {
  GROUP_ID_BYTES,
  HASH_BYTES,
  MAX_GROUP_NAME_LENGTH,
  MAX_MEMBERS,
  MAX_MEMBERSHIP_BYTES,
  MEMBERSHIP_SIGNATURE_DOMAIN,
  SIGNATURE_BYTES
} from './constants.js'

/** One version of a group's member list. Times in ms since the Unix epoch. */
export interface MembershipDoc {
  /** 32 lowercase hex digits */
  groupId: string
  version: number
  name: string
  /** PeerIds, in the order they joined */
  members: string[]
  /** PeerIds, each also in `members` */
  admins: string[]
  /** sha-256 of the previous version; empty for version 1 */
  prevHash: Uint8Array
  author: string
  keyEpoch: number
  createdAt: number
  signature: Uint8Array
}

export type UnsignedMembership = Omit<MembershipDoc, 'signature'>

/** What a change did, for events and key distribution. */
export interface MembershipDiff {
  added: string[]
  removed: string[]
  /** the key epoch moved: every remaining member makes a new sender key */
  rotated: boolean
}

const GROUP_ID_PATTERN = new RegExp(`^[0-9a-f]{${GROUP_ID_BYTES * 2}}$`)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function invalid (message: string): never {
  throw new OctetError('GROUP_INVALID', `membership: ${message}`)
}

function forged (message: string): never {
  throw new OctetError('GROUP_FORGED', `membership: ${message}`)
}

export function isGroupId (value: string): boolean {
  return GROUP_ID_PATTERN.test(value)
}

/** A PeerId in canonical form whose key is Ed25519 (the only kind that can sign a membership). */
export function isEd25519PeerId (value: string): boolean {
  return canonicalPeerIdType(value) === 'Ed25519'
}

// ---------------------------------------------------------------- encoding

function toPb (doc: UnsignedMembership & { signature?: Uint8Array }): Membership {
  return {
    groupId: doc.groupId,
    version: BigInt(doc.version),
    name: doc.name,
    members: [...doc.members],
    admins: [...doc.admins],
    prevHash: new Uint8Array(doc.prevHash),
    author: doc.author,
    keyEpoch: BigInt(doc.keyEpoch),
    createdAt: BigInt(doc.createdAt),
    signature: new Uint8Array(doc.signature ?? new Uint8Array(0))
  }
}

function toNumber (value: bigint, field: string): number {
  if (value > MAX_SAFE) invalid(`${field} ${value} is larger than 2^53-1`)
  return Number(value)
}

/** The canonical encoding, signature included: what is hashed and sent. */
export function encodeMembership (doc: MembershipDoc): Uint8Array {
  checkShape(doc)
  return Membership.encode(toPb(doc))
}

/** Decodes and checks the shape (GROUP_INVALID); says nothing about the signature. */
export function decodeMembership (bytes: Uint8Array): MembershipDoc {
  if (bytes.byteLength > MAX_MEMBERSHIP_BYTES) invalid(`${bytes.byteLength} bytes; the limit is ${MAX_MEMBERSHIP_BYTES}`)
  let pb: Membership
  try {
    pb = Membership.decode(bytes, { limits: { members: MAX_MEMBERS, admins: MAX_MEMBERS } })
  } catch (err) {
    invalid(`does not decode: ${errorMessage(err)}`)
  }
  return membershipFromPb(pb)
}

/** A decoded protobuf Membership (e.g. inside a GroupControl) as a checked, copied document. */
export function membershipFromPb (pb: Membership): MembershipDoc {
  const doc: MembershipDoc = {
    groupId: pb.groupId,
    version: toNumber(pb.version, 'version'),
    name: pb.name,
    members: [...pb.members],
    admins: [...pb.admins],
    prevHash: new Uint8Array(pb.prevHash),
    author: pb.author,
    keyEpoch: toNumber(pb.keyEpoch, 'keyEpoch'),
    createdAt: toNumber(pb.createdAt, 'createdAt'),
    signature: new Uint8Array(pb.signature)
  }
  checkShape(doc)
  return doc
}

export function membershipToPb (doc: MembershipDoc): Membership {
  checkShape(doc)
  return toPb(doc)
}

/** sha-256 of the canonical encoding: the next version's prevHash. */
export function membershipHash (doc: MembershipDoc): Uint8Array {
  return new Uint8Array(createHash('sha256').update(encodeMembership(doc)).digest())
}

/** The bytes the author signs. */
export function signedPayload (doc: UnsignedMembership): Uint8Array {
  const body = Membership.encode(toPb({ ...doc, signature: new Uint8Array(0) }))
  const domain = new TextEncoder().encode(MEMBERSHIP_SIGNATURE_DOMAIN)
  const out = new Uint8Array(domain.byteLength + 1 + body.byteLength)
  out.set(domain, 0)
  out.set(body, domain.byteLength + 1)
  return out
}

// ---------------------------------------------------------------- shape

/**
 * Everything a version must satisfy on its own: a group id, a version from 1,
 * a name, unique Ed25519 members (at most MAX_MEMBERS), unique admins who are
 * members (at least one while anyone is a member), an Ed25519 author, a
 * previous hash exactly when version > 1, a key epoch from 1 to the version,
 * a 64-byte signature (empty only while unsigned). GROUP_INVALID otherwise.
 */
export function checkShape (doc: UnsignedMembership & { signature?: Uint8Array }): void {
  if (typeof doc.groupId !== 'string' || !isGroupId(doc.groupId)) invalid(`group id ${JSON.stringify(String(doc.groupId).slice(0, 40))} is not ${GROUP_ID_BYTES * 2} lowercase hex digits`)
  if (!Number.isSafeInteger(doc.version) || doc.version < 1) invalid(`version ${doc.version} is not an integer from 1`)
  if (typeof doc.name !== 'string' || doc.name.length > MAX_GROUP_NAME_LENGTH) invalid(`the name is longer than ${MAX_GROUP_NAME_LENGTH} characters`)
  if (!Array.isArray(doc.members) || doc.members.length > MAX_MEMBERS) invalid(`more than ${MAX_MEMBERS} members`)
  const members = new Set<string>()
  for (const member of doc.members) {
    if (!isEd25519PeerId(member)) invalid(`member ${JSON.stringify(String(member).slice(0, MAX_PEER_ID_CHARS))} is not an Ed25519 PeerId`)
    if (members.has(member)) invalid(`member ${member} is listed twice`)
    members.add(member)
  }
  const admins = new Set<string>()
  for (const admin of doc.admins) {
    if (!members.has(admin)) invalid(`admin ${String(admin).slice(0, MAX_PEER_ID_CHARS)} is not a member`)
    if (admins.has(admin)) invalid(`admin ${admin} is listed twice`)
    admins.add(admin)
  }
  if (members.size > 0 && admins.size === 0) invalid('a group with members needs an admin')
  if (!isEd25519PeerId(doc.author)) invalid('the author is not an Ed25519 PeerId')
  const expectedHash = doc.version === 1 ? 0 : HASH_BYTES
  if (!(doc.prevHash instanceof Uint8Array) || doc.prevHash.byteLength !== expectedHash) invalid(`prevHash must be ${expectedHash} bytes for version ${doc.version}`)
  if (!Number.isSafeInteger(doc.keyEpoch) || doc.keyEpoch < 1 || doc.keyEpoch > doc.version) invalid(`key epoch ${doc.keyEpoch} is not from 1 to the version`)
  if (!Number.isSafeInteger(doc.createdAt) || doc.createdAt < 0) invalid('createdAt is not a time')
  const signature = doc.signature ?? new Uint8Array(0)
  if (!(signature instanceof Uint8Array) || (signature.byteLength !== SIGNATURE_BYTES && signature.byteLength !== 0)) invalid(`the signature is not ${SIGNATURE_BYTES} bytes`)
}

// ---------------------------------------------------------------- signing

export async function signMembership (doc: UnsignedMembership, key: PrivateKey): Promise<MembershipDoc> {
  checkShape(doc)
  if (key.type !== 'Ed25519') throw new OctetError('INVALID_CONFIG', 'a membership is signed with an Ed25519 key')
  const signature = await key.sign(signedPayload(doc))
  return { ...doc, members: [...doc.members], admins: [...doc.admins], prevHash: new Uint8Array(doc.prevHash), signature: new Uint8Array(signature) }
}

/** Whether the author's key (from its PeerId) signed exactly this version. */
export async function verifyMembershipSignature (doc: MembershipDoc): Promise<boolean> {
  if (doc.signature.byteLength !== SIGNATURE_BYTES) return false
  try {
    const publicKey = peerIdFromString(doc.author).publicKey
    if (publicKey == null) return false
    return await publicKey.verify(signedPayload(doc), doc.signature)
  } catch {
    return false
  }
}

/** The first version: the creator alone, member and admin. */
export async function createGenesis (init: { groupId: string, name: string, key: PrivateKey, author: string, now: number }): Promise<MembershipDoc> {
  return await signMembership({
    groupId: init.groupId,
    version: 1,
    name: init.name,
    members: [init.author],
    admins: [init.author],
    prevHash: new Uint8Array(0),
    author: init.author,
    keyEpoch: 1,
    createdAt: init.now
  }, init.key)
}

/**
 * The next version after `prev` with the given members and admins (and name),
 * signed by `author`: prevHash, version and key epoch follow from `prev`.
 * Refuses (GROUP_FORGED) an author who is not an admin of `prev`.
 */
export async function createChange (prev: MembershipDoc, change: { members: string[], admins: string[], name?: string }, init: { key: PrivateKey, author: string, now: number }): Promise<MembershipDoc> {
  if (!prev.admins.includes(init.author)) forged(`${init.author} is not an admin of version ${prev.version}`)
  const version = prev.version + 1
  const removed = prev.members.some(m => !change.members.includes(m))
  return await signMembership({
    groupId: prev.groupId,
    version,
    name: change.name ?? prev.name,
    members: [...change.members],
    admins: [...change.admins],
    prevHash: membershipHash(prev),
    author: init.author,
    keyEpoch: removed ? version : prev.keyEpoch,
    createdAt: init.now
  }, init.key)
}

// ---------------------------------------------------------------- validation

/** A creation as its creator made it: version 1, the author alone as member and admin, signed by it. */
export async function validateGenesis (doc: MembershipDoc): Promise<void> {
  checkShape(doc)
  if (doc.version !== 1) invalid(`a new group starts at version 1, not ${doc.version}`)
  if (doc.keyEpoch !== 1) invalid('a new group starts at key epoch 1')
  if (!doc.admins.includes(doc.author) || !doc.members.includes(doc.author)) forged('the creator must be member and admin of version 1')
  if (!await verifyMembershipSignature(doc)) forged(`the signature of version 1 does not verify with ${doc.author}'s key`)
}

/**
 * `next` as the change that follows `prev`. In order: same group
 * (GROUP_INVALID), newer (GROUP_STALE), the very next (GROUP_GAP), prevHash
 * is prev's hash, the author an admin of prev, the signature the author's
 * (GROUP_FORGED), the key epoch as the rules say (GROUP_INVALID).
 */
export async function validateChange (prev: MembershipDoc, next: MembershipDoc): Promise<MembershipDiff> {
  checkShape(prev)
  checkShape(next)
  if (next.groupId !== prev.groupId) invalid(`version ${next.version} is of group ${next.groupId}, not ${prev.groupId}`)
  if (next.version <= prev.version) throw new OctetError('GROUP_STALE', `membership: version ${next.version} is not newer than version ${prev.version}`)
  if (next.version !== prev.version + 1) throw new OctetError('GROUP_GAP', `membership: version ${next.version} does not follow version ${prev.version}; a version in between is missing`)
  if (!uint8ArrayEquals(next.prevHash, membershipHash(prev))) forged(`version ${next.version} does not name version ${prev.version} as its previous one`)
  if (!prev.admins.includes(next.author)) forged(`${next.author} signed version ${next.version} but is not an admin of version ${prev.version}`)
  if (!await verifyMembershipSignature(next)) forged(`the signature of version ${next.version} does not verify with ${next.author}'s key`)
  const diff = diffMembers(prev, next)
  const expectedEpoch = diff.removed.length > 0 ? next.version : prev.keyEpoch
  if (next.keyEpoch !== expectedEpoch) invalid(`version ${next.version} must have key epoch ${expectedEpoch}, not ${next.keyEpoch}`)
  return { ...diff, rotated: next.keyEpoch !== prev.keyEpoch }
}

/**
 * A version seen without the chain before it: what an invitee, not yet a
 * member, gets. It can check the shape and that an admin of that very
 * version signed it, not that the author was an admin before; the caller
 * adds that the version came over a pairwise session from one of its admins
 * (whom the invitee chose to trust by accepting).
 */
export async function validateStandalone (doc: MembershipDoc): Promise<void> {
  checkShape(doc)
  if (!doc.admins.includes(doc.author)) forged(`${doc.author} signed version ${doc.version} but is not one of its admins`)
  if (!await verifyMembershipSignature(doc)) forged(`the signature of version ${doc.version} does not verify with ${doc.author}'s key`)
}

export function diffMembers (prev: Pick<MembershipDoc, 'members'>, next: Pick<MembershipDoc, 'members'>): Omit<MembershipDiff, 'rotated'> {
  return {
    added: next.members.filter(m => !prev.members.includes(m)),
    removed: prev.members.filter(m => !next.members.includes(m))
  }
}

/**
 * Applies the versions of `chain` (oldest first) that are newer than
 * `current`, one by one. Returns the versions applied, each with its diff;
 * [] when the newest is the version we hold (a repeat). Throws when a
 * version does not validate, or when the chain holds nothing newer and
 * differs from what we hold (GROUP_STALE), or starts after a gap (GROUP_GAP).
 */
export async function applyChain (current: MembershipDoc, chain: MembershipDoc[]): Promise<Array<{ doc: MembershipDoc, diff: MembershipDiff }>> {
  const newest = chain.at(-1)
  if (newest == null) invalid('an empty chain')
  if (newest.version <= current.version) {
    if (newest.version === current.version && uint8ArrayEquals(membershipHash(newest), membershipHash(current))) return []
    throw new OctetError('GROUP_STALE', `membership: version ${newest.version} is not newer than version ${current.version}`)
  }
  const applied: Array<{ doc: MembershipDoc, diff: MembershipDiff }> = []
  let head = current
  for (const doc of chain) {
    if (doc.version <= head.version) continue
    try {
      applied.push({ doc, diff: await validateChange(head, doc) })
    } catch (err) {
      // what was valid before the bad link stays applied only if the caller takes `applied`; a
      // bad link anywhere refuses the whole chain, so a forger cannot ride on a good prefix
      if (isOctetError(err)) throw err
      throw new OctetError('GROUP_INVALID', `membership: ${errorMessage(err)}`, { cause: err })
    }
    head = doc
  }
  return applied
}
