/**
 * Group conversations: a gossipsub topic per group, messages encrypted with
 * Sender Keys, and a member list signed by the group's admins.
 *
 * Membership (membership.ts): a chain of signed versions. A change is made
 * by an admin, sent pairwise (GROUP_CONTROL envelopes through the outbox, so
 * it is retried and can wait in mailboxes) to every member of the old and the
 * new version, and checked link by link by each of them.
 *
 * Keys: each member has a sender key per key epoch, named
 * `<groupId>/<epoch>` for libsignal (a distribution id of its own), and sends
 * it pairwise (SENDER_KEY envelopes) to every other member. Adding a member
 * keeps the epoch: each member sends the newcomer its current key, which opens
 * only what it encrypts from then on. Removing a member starts a new epoch
 * (the new version's number): every remaining member makes a new key and
 * sends it to the remaining members only, so the removed one cannot read
 * anything sent afterwards.
 *
 * Messages (codec.ts): a GroupMessage on the topic, from a current member,
 * decrypting under the sender's key — whose signature is what proves the
 * author (gossipsub signs nothing, see src/node/pubsub.ts) — with the seq and
 * time sealed inside equal to the outer ones. Otherwise it is rejected in
 * gossipsub validation (its propagation source loses score), counted and
 * logged. Only a proven message is forwarded to the mesh: one already here
 * (dedup by (sender, seq)) or waiting in memory for its sender key (until
 * that arrives) is not, as nothing proves it yet.
 *
 * Catch-up (catch-up.ts, over history.ts): every member keeps the
 * ciphertexts it saw (the last HISTORY_KEPT_PER_GROUP per group) and serves
 * them to members. A member asks one or two others on start and when a
 * sender's seq skips.
 *
 * Invites — the flow chosen: a separate invite control message.
 *   1. An admin sends INVITE (the current membership version) to the peer and
 *      remembers the invite. The invitee checks that version stands on its own
 *      (signed by one of its admins) and came from one of its admins; the
 *      group shows as `invited`, with a `group.invite` event.
 *   2. The invitee accepts (ACCEPT to the inviting admin; state `accepted`) or
 *      declines (DECLINE; state `declined`).
 *   3. On ACCEPT for a pending invite, the admin signs a new version with the
 *      invitee as a member and sends it to everyone; the invitee, seeing itself
 *      in a version signed and sent by an admin, becomes `joined`, subscribes
 *      and sends its sender key; the members send theirs to it.
 * A joining member cannot check the chain before the version it joins at: it
 * trusts the admins it accepted the invite of. Members check every link.
 * Concurrent changes by two admins: the first one a member applies wins; the
 * other is refused (GROUP_STALE) there.
 *
 * The parts, each owning its own state, composed by GroupService here (the
 * API's, the CLI's and the daemon's one entry); they share a GroupContext
 * (context.ts: dependencies, records, the per-group lock):
 *   membership-changes.ts  create, invite, accept, decline, leave, remove; adopt()
 *   pairwise.ts            GROUP_CONTROL and SENDER_KEY envelopes that reach us
 *   keys.ts                our sender keys out, the members' in
 *   publish.ts             our messages out
 *   ingest.ts              their messages in: held (no key), early (a gap), topics
 *   catch-up.ts            asking and serving history, with its timers
 * The daemon registers envelopeHandler with the messenger (src/daemon.ts).
 */
import type { GroupEnvelopeHandler } from '../messaging/index.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './constants.js'
import { CatchUp, type CatchUpReport } from './catch-up.js'
import { GroupContext, type GroupServiceInit, type GroupView } from './context.js'
import { errorMessage } from '../errors.js'
import { InFlight } from '../in-flight.js'
import { IDEMPOTENCY_TTL, PRUNE_INTERVAL } from '../messaging/constants.js'
import { GossipIngest } from './ingest.js'
import { SenderKeys } from './keys.js'
import type { MembershipDoc } from './membership.js'
import { MembershipChanges } from './membership-changes.js'
import { PairwiseInput } from './pairwise.js'
import { Publisher } from './publish.js'
import type { GroupMessageRecord, GroupPageQuery } from './store.js'

export { HISTORY_PROTOCOL } from './constants.js'
export { groupMessageId } from './ids.js'
export { groupTopic, senderKeyName, type GroupMessenger, type GroupServiceInit, type GroupView } from './context.js'
export { advance } from './ingest.js'
export type { CatchUpReport } from './catch-up.js'
export type { GroupMessageRecord, GroupPageQuery, GroupState } from './store.js'
export type { MembershipDoc } from './membership.js'

export class GroupService {
  /**
   * Takes the GROUP_CONTROL and SENDER_KEY envelopes the messenger receives:
   * the composition root registers it (messenger.setGroupHandler) before the
   * messenger starts. stop() waits for the envelopes being taken in.
   */
  readonly envelopeHandler: GroupEnvelopeHandler
  private readonly ctx: GroupContext
  private readonly ingest: GossipIngest
  private readonly catchUps: CatchUp
  private readonly changes: MembershipChanges
  private readonly publisher: Publisher
  private readonly envelopes = new InFlight()
  private readonly pruning = new InFlight()
  private pruneTimer: NodeJS.Timeout | undefined
  private running = false

  constructor (init: GroupServiceInit) {
    const ctx = new GroupContext(init)
    this.ctx = ctx
    // a gap found by ingest asks catch-up, and catch-up stores through ingest
    this.ingest = new GossipIngest(ctx, { onGap: (groupId, prefer) => { this.catchUps.soon(groupId, prefer) } })
    this.catchUps = new CatchUp(ctx, this.ingest)
    const keys = new SenderKeys(ctx, this.ingest)
    this.changes = new MembershipChanges(ctx, { keys, topics: this.ingest, catchUp: this.catchUps })
    this.publisher = new Publisher(ctx, keys)
    const pairwise = new PairwiseInput(ctx, keys, this.changes)
    this.envelopeHandler = async (sender, kind, plaintext) => { await this.envelopes.track(pairwise.onEnvelope(sender, kind, plaintext)) }
  }

  /** Serves catch-up, subscribes to every group we are in and catches up on each. Idempotent. */
  async start (): Promise<void> {
    if (this.running) return
    await this.catchUps.start()
    await this.ingest.start()
    this.running = true
    // Idempotency-Keys of sent messages are forgotten after IDEMPOTENCY_TTL, like the messenger's
    this.pruneTimer = setInterval(() => { void this.pruning.track(this.pruneIdempotency()) }, PRUNE_INTERVAL)
    this.pruneTimer.unref()
    void this.pruning.track(this.pruneIdempotency())
    for (const record of await this.ctx.db.all()) {
      if (record.state !== 'joined') continue
      this.ingest.follow(record.id)
      this.catchUps.onStart(record.id)
    }
  }

  /**
   * Stops serving and asking history (timers cleared, streams aborted), leaves
   * the topics, and resolves once the work in flight (catch-ups, history
   * streams, gossip and envelopes being taken in) has ended. Idempotent.
   * An envelope the messenger hands over afterwards (it stops after us) is
   * still taken, as refusing it would drop it for good; it starts no
   * background work, and start() subscribes what it joined.
   */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.pruneTimer)
    this.pruneTimer = undefined
    await Promise.all([this.catchUps.stop(), this.ingest.stop(), this.pruning.idle()])
    await this.envelopes.idle()
  }

  /** group.message events waiting for an earlier message of their sender (GET /metrics). */
  get heldEvents (): number {
    return this.ingest.heldEvents
  }

  /** Deletes the Idempotency-Keys past their TTL; a failure waits for the next round. */
  private async pruneIdempotency (): Promise<void> {
    try {
      const pruned = await this.ctx.db.pruneIdempotency(this.ctx.now() - IDEMPOTENCY_TTL, () => !this.running)
      this.ctx.count('retention.group-idempotency.pruned', pruned)
    } catch (err) {
      this.ctx.log.warn({ err: errorMessage(err) }, 'pruning group Idempotency-Keys failed')
    }
  }

  async create (name: string): Promise<GroupView> {
    return await this.changes.create(name)
  }

  async list (): Promise<GroupView[]> {
    const records = await this.ctx.db.all()
    return records.map(r => this.ctx.view(r)).sort((a, b) => b.updatedAt - a.updatedAt)
  }

  async get (groupId: string): Promise<GroupView> {
    return this.ctx.view(await this.ctx.requireGroup(groupId))
  }

  /** As an admin: invite `peer`; it gets the current version and may accept. */
  async invite (groupId: string, peer: string): Promise<GroupView> {
    return await this.changes.invite(groupId, peer)
  }

  /** As an invitee: accept; the inviting admin then adds us with a signed change. */
  async accept (groupId: string): Promise<GroupView> {
    return await this.changes.accept(groupId)
  }

  async decline (groupId: string): Promise<GroupView> {
    return await this.changes.decline(groupId)
  }

  /** Leaves a group (or withdraws an accepted invite). An admin signs its own removal; others ask the admins. */
  async leave (groupId: string): Promise<GroupView> {
    return await this.changes.leave(groupId)
  }

  /** As an admin: remove a member; the remaining members move to new sender keys. */
  async removeMember (groupId: string, peer: string): Promise<GroupView> {
    return await this.changes.removeMember(groupId, peer)
  }

  /**
   * Encrypts, keeps and publishes `text`; `recipients` is how many peers gossipsub sent it to
   * (0 is fine). A retry with the same `idempotencyKey` answers the first message (`created` false).
   */
  async send (groupId: string, text: string, idempotencyKey?: string): Promise<{ message: GroupMessageRecord, recipients: number, created: boolean }> {
    return await this.publisher.send(groupId, text, idempotencyKey)
  }

  /**
   * A page of a group's messages (ours too) in the order this node took them
   * in, oldest first: like a conversation's, the newest `limit` (before the
   * message `before`, when given), or the oldest `limit` after `after`.
   */
  async messages (groupId: string, query: Partial<GroupPageQuery> = {}): Promise<GroupMessageRecord[]> {
    await this.ctx.requireGroup(groupId)
    const limit = Math.min(Math.max(1, query.limit ?? DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    return await this.ctx.db.page(groupId, { ...query, limit })
  }

  /** The membership versions we keep of a group (the last KEPT_VERSIONS), oldest first. */
  async versions (groupId: string): Promise<MembershipDoc[]> {
    const record = await this.ctx.requireGroup(groupId)
    const current = this.ctx.db.doc(record)
    const kept = await this.ctx.db.versionRange(groupId, 1, current.version)
    return kept.length > 0 ? kept : [current]
  }

  /** Asks up to CATCH_UP_PEERS members for what we miss (also done on start and on gaps). */
  async catchUp (groupId: string, prefer: string[] = []): Promise<CatchUpReport> {
    return await this.catchUps.catchUp(groupId, prefer)
  }
}
