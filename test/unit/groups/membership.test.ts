import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import {
  applyChain,
  createChange,
  createGenesis,
  decodeMembership,
  encodeMembership,
  membershipHash,
  signMembership,
  validateChange,
  validateGenesis,
  validateStandalone,
  type MembershipDoc
} from '../../../src/groups/membership.js'

interface Who { key: Ed25519PrivateKey, id: string }

const GROUP = '0123456789abcdef0123456789abcdef'
const NOW = Date.UTC(2030, 0, 1)

async function who (): Promise<Who> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

async function codeOf (work: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work)
  } catch (err) {
    return isOctetError(err) ? err.code : `not an OctetError: ${String(err)}`
  }
  return 'OK'
}

describe('membership documents', () => {
  let admin: Who
  let bob: Who
  let carol: Who
  let mallory: Who
  /** v1: admin alone; v2: + bob; v3: + carol; v4: bob removed (new key epoch) */
  let v1: MembershipDoc
  let v2: MembershipDoc
  let v3: MembershipDoc
  let v4: MembershipDoc

  beforeAll(async () => {
    [admin, bob, carol, mallory] = await Promise.all([who(), who(), who(), who()])
    const by = { key: admin.key, author: admin.id, now: NOW }
    v1 = await createGenesis({ groupId: GROUP, name: 'friends', ...by })
    v2 = await createChange(v1, { members: [admin.id, bob.id], admins: [admin.id] }, by)
    v3 = await createChange(v2, { members: [admin.id, bob.id, carol.id], admins: [admin.id] }, by)
    v4 = await createChange(v3, { members: [admin.id, carol.id], admins: [admin.id] }, by)
  })

  /** A version signed by `signer` with whatever fields the case wants (bypassing createChange's own checks). */
  const signed = async (signer: Who, doc: Partial<MembershipDoc> & { prev: MembershipDoc }): Promise<MembershipDoc> => {
    const { prev, ...fields } = doc
    return await signMembership({
      groupId: prev.groupId,
      version: prev.version + 1,
      name: prev.name,
      members: [...prev.members],
      admins: [...prev.admins],
      prevHash: membershipHash(prev),
      author: signer.id,
      keyEpoch: prev.keyEpoch,
      createdAt: NOW,
      ...fields
    }, signer.key)
  }

  it('builds the chain the way the rules say', () => {
    expect(v1).toMatchObject({ version: 1, members: [admin.id], admins: [admin.id], keyEpoch: 1, author: admin.id })
    expect(v1.prevHash.byteLength).toBe(0)
    expect(v2.prevHash).toEqual(membershipHash(v1))
    expect(v3.keyEpoch).toBe(1)
    // a removal starts a new key epoch, named after the version
    expect(v4.keyEpoch).toBe(4)
    expect(decodeMembership(encodeMembership(v4))).toEqual(v4)
  })

  it('accepts a creation signed by its creator and nothing else', async () => {
    expect(await codeOf(validateGenesis(v1))).toBe('OK')
    const cases: Array<[string, () => Promise<MembershipDoc>, string]> = [
      ['signed by someone else', async () => ({ ...v1, signature: (await signMembership({ ...v1, author: admin.id }, mallory.key)).signature }), 'GROUP_FORGED'],
      ['tampered after signing', async () => ({ ...v1, name: 'enemies' }), 'GROUP_FORGED'],
      ['not version 1', async () => await signMembership({ ...v1, version: 2, prevHash: new Uint8Array(32) }, admin.key), 'GROUP_INVALID'],
      ['creator not an admin', async () => await signMembership({ ...v1, members: [admin.id, bob.id], admins: [bob.id] }, admin.key), 'GROUP_FORGED']
    ]
    for (const [what, make, code] of cases) {
      expect(await codeOf(async () => { await validateGenesis(await make()) }), what).toBe(code)
    }
  })

  it('validates changes (table)', async () => {
    const cases: Array<{ what: string, prev: () => MembershipDoc, next: () => Promise<MembershipDoc>, code: string }> = [
      { what: 'an admin adds a member', prev: () => v1, next: async () => v2, code: 'OK' },
      { what: 'an admin removes a member (new epoch)', prev: () => v3, next: async () => v4, code: 'OK' },
      { what: 'an admin removes itself, promoting another', prev: () => v3, next: async () => await signed(admin, { prev: v3, members: [bob.id, carol.id], admins: [bob.id], keyEpoch: 4 }), code: 'OK' },
      { what: 'a member who is no admin signs a change', prev: () => v3, next: async () => await signed(bob, { prev: v3, members: [admin.id, bob.id], keyEpoch: 4 }), code: 'GROUP_FORGED' },
      { what: 'a member makes itself admin', prev: () => v3, next: async () => await signed(bob, { prev: v3, admins: [admin.id, bob.id] }), code: 'GROUP_FORGED' },
      { what: 'an outsider signs a change', prev: () => v2, next: async () => await signed(mallory, { prev: v2, members: [admin.id, bob.id, mallory.id] }), code: 'GROUP_FORGED' },
      { what: 'the admin as author, signed by another key', prev: () => v2, next: async () => ({ ...await signed(admin, { prev: v2, members: [admin.id, bob.id, mallory.id] }), signature: (await signed(mallory, { prev: v2 })).signature }), code: 'GROUP_FORGED' },
      { what: 'tampered after signing (a member added)', prev: () => v2, next: async () => ({ ...v3, members: [...v3.members, mallory.id] }), code: 'GROUP_FORGED' },
      { what: 'prevHash of another version', prev: () => v2, next: async () => await signed(admin, { prev: v2, prevHash: membershipHash(v1) }), code: 'GROUP_FORGED' },
      { what: 'a replay of the current version', prev: () => v3, next: async () => v3, code: 'GROUP_STALE' },
      { what: 'a replay of an old version', prev: () => v3, next: async () => v2, code: 'GROUP_STALE' },
      { what: 'a version skipped', prev: () => v2, next: async () => v4, code: 'GROUP_GAP' },
      { what: 'another group', prev: () => v1, next: async () => await signed(admin, { prev: v1, groupId: 'f'.repeat(32) }), code: 'GROUP_INVALID' },
      { what: 'a removal that keeps the key epoch', prev: () => v3, next: async () => await signed(admin, { prev: v3, members: [admin.id, carol.id] }), code: 'GROUP_INVALID' },
      { what: 'a new key epoch with nobody removed', prev: () => v2, next: async () => await signed(admin, { prev: v2, keyEpoch: 3 }), code: 'GROUP_INVALID' },
      { what: 'an admin who is not a member', prev: () => v2, next: async () => await signed(admin, { prev: v2, admins: [admin.id, carol.id] }), code: 'GROUP_INVALID' },
      { what: 'a member listed twice', prev: () => v2, next: async () => await signed(admin, { prev: v2, members: [admin.id, bob.id, bob.id] }), code: 'GROUP_INVALID' },
      { what: 'members but no admin', prev: () => v2, next: async () => await signed(admin, { prev: v2, admins: [] }), code: 'GROUP_INVALID' },
      { what: 'a member that is not a PeerId', prev: () => v2, next: async () => await signed(admin, { prev: v2, members: [admin.id, 'bob'] }), code: 'GROUP_INVALID' }
    ]
    for (const { what, prev, next, code } of cases) {
      expect(await codeOf(async () => { await validateChange(prev(), await next()) }), what).toBe(code)
    }
  })

  it('reports what a change did', async () => {
    expect(await validateChange(v2, v3)).toEqual({ added: [carol.id], removed: [], rotated: false })
    expect(await validateChange(v3, v4)).toEqual({ added: [], removed: [bob.id], rotated: true })
  })

  it('applies chains: repeats are no-ops, older versions are skipped, a bad link refuses all', async () => {
    expect(await applyChain(v3, [v3])).toEqual([])
    expect((await applyChain(v2, [v2, v3, v4])).map(a => a.doc.version)).toEqual([3, 4])
    expect(await codeOf(applyChain(v3, [v2]))).toBe('GROUP_STALE')
    expect(await codeOf(applyChain(v1, [v3, v4]))).toBe('GROUP_GAP')
    const forgedV5 = await signed(bob, { prev: v4, members: [admin.id, carol.id, bob.id] })
    expect(await codeOf(applyChain(v3, [v4, forgedV5]))).toBe('GROUP_FORGED')
    // the same version number with other content (a fork) is not taken for a repeat
    const otherV3 = await createChange(v2, { members: [admin.id, bob.id, mallory.id], admins: [admin.id] }, { key: admin.key, author: admin.id, now: NOW })
    expect(await codeOf(applyChain(v3, [otherV3]))).toBe('GROUP_STALE')
  })

  it('checks a version on its own (what an invitee can do)', async () => {
    expect(await codeOf(validateStandalone(v3))).toBe('OK')
    const byMember = await signed(bob, { prev: v3 })
    expect(await codeOf(validateStandalone(byMember))).toBe('GROUP_FORGED')
    expect(await codeOf(validateStandalone({ ...v3, name: 'x' }))).toBe('GROUP_FORGED')
  })

  it('refuses malformed encodings with GROUP_INVALID', async () => {
    const cases: Array<[string, Uint8Array]> = [
      ['garbage', Uint8Array.from([0xff, 0xff, 0xff, 0xff])],
      ['empty', new Uint8Array(0)],
      ['too large', new Uint8Array(9000)]
    ]
    for (const [what, bytes] of cases) expect(await codeOf(() => decodeMembership(bytes)), what).toBe('GROUP_INVALID')
    // the admin may not sign what breaks the rules either
    expect(await codeOf(createChange(v2, { members: [admin.id], admins: [admin.id] }, { key: bob.key, author: bob.id, now: NOW }))).toBe('GROUP_FORGED')
  })
})
