import { expect } from 'vitest'
import { groupTopic, type GroupMessageRecord, type GroupView } from '../../src/groups/index.js'
import type { EventLog, GroupEventType, OctetEvent } from '../../src/messaging/index.js'
import type { PubsubMessage } from '../../src/node/index.js'
import { waitFor } from './daemon.js'
import type { InProcessDaemon } from './inproc.js'

/**
 * Groups among in-process daemons, through their HTTP API: reading views,
 * messages, events and counters, forming a group and waiting on what can be
 * observed (a version, a message, a topic subscription), never on time.
 */

export const group = async (node: InProcessDaemon, groupId: string): Promise<GroupView | undefined> => {
  const res = await node.api<{ group: GroupView }>('GET', `/v1/groups/${groupId}`)
  return res.status === 200 ? res.body.group : undefined
}
export const messages = async (node: InProcessDaemon, groupId: string): Promise<GroupMessageRecord[]> =>
  (await node.api<{ messages: GroupMessageRecord[] }>('GET', `/v1/groups/${groupId}/messages?limit=1000`)).body.messages
export const incoming = async (node: InProcessDaemon, groupId: string): Promise<GroupMessageRecord[]> => (await messages(node, groupId)).filter(m => m.direction === 'in')
export const stat = async (node: InProcessDaemon, name: string): Promise<number> =>
  (await node.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters[name] ?? 0
export const send = async (node: InProcessDaemon, groupId: string, text: string): Promise<GroupMessageRecord> => {
  const res = await node.api<{ message: GroupMessageRecord }>('POST', `/v1/groups/${groupId}/messages`, { text })
  expect(res.status).toBe(202)
  return res.body.message
}
/** The node's events of `type` about `groupId`, from its event log. */
export const events = async <K extends GroupEventType>(node: InProcessDaemon, groupId: string, type: K): Promise<Array<OctetEvent<K>>> =>
  await groupEvents(node.messenger.events, groupId, type)
/** The events of `type` about `groupId` in an event log. */
export async function groupEvents<K extends GroupEventType> (log: EventLog, groupId: string, type: K): Promise<Array<OctetEvent<K>>> {
  const found: Array<OctetEvent<K>> = []
  for await (const event of log.since(0)) {
    if (event.type !== type) continue
    const typed = event as OctetEvent<K>
    if (typed.data.groupId === groupId) found.push(typed)
  }
  return found
}
export const waitVersion = async (nodes: InProcessDaemon[], groupId: string, version: number): Promise<void> => {
  for (const node of nodes) await waitFor(async () => (await group(node, groupId))?.version === version ? true : undefined, { what: `version ${version} at ${node.peerId}` })
}
export const waitIncoming = async (node: InProcessDaemon, groupId: string, what: string, check: (received: GroupMessageRecord[]) => boolean): Promise<void> => {
  await waitFor(async () => check(await incoming(node, groupId)) ? true : undefined, { what: `${what} at ${node.peerId}` })
}
/** Subscribes a node to the topic at the libp2p level, keeping every message that reaches it. */
export const capture = (node: InProcessDaemon, topic: string): PubsubMessage[] => {
  const seen: PubsubMessage[] = []
  node.daemon.node.pubsub.subscribe(topic, async message => {
    seen.push(message)
    return 'ignore'
  })
  return seen
}
/** Until every watcher knows every one of `peers` (but itself) to be on the topic. */
export const waitSubscribed = async (watchers: InProcessDaemon[], peers: InProcessDaemon[], topic: string): Promise<void> => {
  for (const watcher of watchers) {
    await waitFor(async () => {
      const subscribers = watcher.daemon.node.pubsub.subscribers(topic)
      return peers.every(p => p === watcher || subscribers.includes(p.peerId)) ? true : undefined
    }, { what: `topic subscriptions seen by ${watcher.peerId}` })
  }
}

export interface Formed {
  id: string
  topic: string
  members: InProcessDaemon[]
  /** the version that added the last invitee */
  version: number
}
/** `admin` creates a group named `name` and invites `invitees`, who accept; resolves once all are members everywhere and on the topic. */
export const formGroup = async (name: string, admin: InProcessDaemon, invitees: InProcessDaemon[]): Promise<Formed> => {
  const created = await admin.api<{ group: GroupView }>('POST', '/v1/groups', { name })
  expect(created.status).toBe(201)
  const { id, topic } = created.body.group
  expect(topic).toBe(groupTopic(id))
  // invites go out at once; each invitee accepts when its invite is there
  for (const peer of invitees) expect((await admin.api('POST', `/v1/groups/${id}/invites`, { peerId: peer.peerId })).status).toBe(202)
  await Promise.all(invitees.map(async peer => {
    await waitFor(async () => (await group(peer, id))?.state === 'invited' ? true : undefined, { what: `invite at ${peer.peerId}` })
    expect((await peer.api('POST', `/v1/groups/${id}/accept`)).status).toBe(202)
  }))
  const members = [admin, ...invitees]
  // the admin signs one version per accept: the one that lists everybody is the one to reach
  const full = await waitFor(async () => {
    const view = await group(admin, id)
    return view != null && members.every(m => view.members.includes(m.peerId)) ? view : undefined
  }, { what: 'every invitee in the admin\'s member list' })
  await waitVersion(members, id, full.version)
  await waitSubscribed(members, members, topic)
  return { id, topic, members, version: full.version }
}

/**
 * How many messages of the topic the node's gossipsub still offers to peers
 * in IHAVE gossip (its message cache's gossip window). Read from gossipsub's
 * internals: no interface says it, and it is what decides whether a peer that
 * comes back can get a missed message by gossip rather than catch-up.
 */
export function gossiped (node: InProcessDaemon, topic: string): number {
  const gossip = node.daemon.node.libp2p.services.pubsub as unknown as { mcache: { getGossipIDs: (topics: Set<string>) => Map<string, Uint8Array[]> } }
  return gossip.mcache.getGossipIDs(new Set([topic])).get(topic)?.length ?? 0
}
