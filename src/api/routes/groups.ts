import type { FastifyInstance } from 'fastify'
import type { GroupService } from '../../groups/index.js'
import { DEFAULT_PAGE_SIZE, MAX_GROUP_NAME_LENGTH, MAX_PAGE_SIZE } from '../../groups/constants.js'
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../../messaging/constants.js'
import { peerIdSchema, stringArray } from '../schemas.js'

const groupSchema = {
  type: 'object',
  required: ['id', 'name', 'state', 'version', 'keyEpoch', 'members', 'admins', 'isAdmin', 'invites', 'topic', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string', description: '32 hex digits' },
    name: { type: 'string' },
    state: {
      type: 'string',
      enum: ['invited', 'accepted', 'joined', 'declined', 'left', 'removed'],
      description: 'invited: accept or decline; accepted: waiting for the admin to add us; joined: a member'
    },
    version: { type: 'integer', description: 'version of the signed member list' },
    keyEpoch: { type: 'integer', description: 'sender keys in use; moves when a member is removed' },
    members: stringArray,
    admins: stringArray,
    isAdmin: { type: 'boolean' },
    invites: { ...stringArray, description: 'as an admin: invited peers that have not answered' },
    invitedBy: { type: 'string', description: 'the admin who invited us' },
    topic: { type: 'string', description: 'the gossipsub topic' },
    createdAt: { type: 'number' },
    updatedAt: { type: 'number' }
  }
} as const

export const groupMessageSchema = {
  type: 'object',
  required: ['groupId', 'id', 'direction', 'author', 'seq', 'text', 'sentAt', 'epoch'],
  properties: {
    groupId: { type: 'string' },
    id: { type: 'string', description: '32 hex digits, the same at every member: the first 16 bytes of SHA-256 over the UTF-8 of `<groupId>:<author>:<seq>`' },
    direction: { type: 'string', enum: ['out', 'in'] },
    author: { type: 'string', description: 'the PeerId of who wrote it (ours when direction is out)' },
    seq: { type: 'integer', description: "the author's sequence number in this group" },
    text: { type: 'string' },
    sentAt: { type: 'number' },
    receivedAt: { type: 'number' },
    epoch: { type: 'integer', description: 'the key epoch it was encrypted in' }
  }
} as const

const groupResponse = { type: 'object', required: ['group'], properties: { group: groupSchema } } as const
const groupParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } } } as const

const messageCursor = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const

export async function groupRoutes (app: FastifyInstance, { groups }: { groups: GroupService }): Promise<void> {
  app.post<{ Body: { name: string } }>('/v1/groups', {
    schema: {
      operationId: 'createGroup', errors: [507],
      summary: 'Create a group; you are its first member and admin',
      tags: ['groups'],
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: MAX_GROUP_NAME_LENGTH } }
      },
      response: { 201: groupResponse }
    }
  }, async (request, reply) => {
    const group = await groups.create(request.body.name)
    void reply.code(201).header('location', `/v1/groups/${group.id}`)
    return { group }
  })

  app.get('/v1/groups', {
    schema: {
      operationId: 'listGroups',
      summary: 'Groups: joined, invited to, and left',
      tags: ['groups'],
      response: { 200: { type: 'object', required: ['groups'], properties: { groups: { type: 'array', items: groupSchema } } } }
    }
  }, async () => ({ groups: await groups.list() }))

  app.get<{ Params: { id: string } }>('/v1/groups/:id', {
    schema: { operationId: 'getGroup', errors: [404], summary: 'One group: members, admins, version, state', tags: ['groups'], params: groupParams, response: { 200: groupResponse } }
  }, async request => ({ group: await groups.get(request.params.id) }))

  app.post<{ Params: { id: string }, Body: { peerId: string } }>('/v1/groups/:id/invites', {
    schema: {
      operationId: 'inviteToGroup', errors: [404, 409, 507],
      summary: 'As an admin, invite a peer; it is added once it accepts (403 NOT_A_MEMBER, NOT_AN_ADMIN)',
      tags: ['groups'],
      params: groupParams,
      body: { type: 'object', required: ['peerId'], additionalProperties: false, properties: { peerId: peerIdSchema } },
      response: { 202: groupResponse }
    }
  }, async (request, reply) => {
    const group = await groups.invite(request.params.id, request.body.peerId)
    void reply.code(202)
    return { group }
  })

  app.post<{ Params: { id: string } }>('/v1/groups/:id/accept', {
    schema: { operationId: 'acceptGroupInvite', errors: [404, 409, 507], summary: 'Accept an invite; the inviting admin then adds you', tags: ['groups'], params: groupParams, response: { 202: groupResponse } }
  }, async (request, reply) => {
    const group = await groups.accept(request.params.id)
    void reply.code(202)
    return { group }
  })

  app.post<{ Params: { id: string } }>('/v1/groups/:id/decline', {
    schema: { operationId: 'declineGroupInvite', errors: [404, 409, 507], summary: 'Decline an invite', tags: ['groups'], params: groupParams, response: { 200: groupResponse } }
  }, async request => ({ group: await groups.decline(request.params.id) }))

  app.post<{ Params: { id: string } }>('/v1/groups/:id/leave', {
    schema: { operationId: 'leaveGroup', errors: [404, 507], summary: 'Leave a group (the admins sign the change the other members then apply; 403 NOT_A_MEMBER when not in it)', tags: ['groups'], params: groupParams, response: { 202: groupResponse } }
  }, async (request, reply) => {
    const group = await groups.leave(request.params.id)
    void reply.code(202)
    return { group }
  })

  app.delete<{ Params: { id: string, peerId: string } }>('/v1/groups/:id/members/:peerId', {
    schema: {
      operationId: 'removeGroupMember', errors: [404, 507],
      summary: 'As an admin, remove a member (or withdraw an invite); the others move to new sender keys (403 NOT_A_MEMBER, NOT_AN_ADMIN)',
      tags: ['groups'],
      params: { type: 'object', required: ['id', 'peerId'], properties: { id: groupParams.properties.id, peerId: peerIdSchema } },
      response: { 202: groupResponse }
    }
  }, async (request, reply) => {
    const group = await groups.removeMember(request.params.id, request.params.peerId)
    void reply.code(202)
    return { group }
  })

  app.post<{ Params: { id: string }, Body: { text: string }, Headers: { 'idempotency-key'?: string } }>('/v1/groups/:id/messages', {
    schema: {
      operationId: 'sendGroupMessage', errors: [404, 413, 507],
      summary: 'Send a text to the group; answers 202 once it is stored and published (403 NOT_A_MEMBER when not, or no longer, a member)',
      tags: ['groups'],
      params: groupParams,
      headers: {
        type: 'object',
        properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH, description: 'a retried request with the same key returns the same message and sends nothing (409 for a different text)' } }
      },
      body: {
        type: 'object',
        required: ['text'],
        additionalProperties: false,
        properties: { text: { type: 'string', description: 'at most 16 KiB of UTF-8 (413 beyond)' } }
      },
      response: {
        202: {
          type: 'object',
          required: ['message', 'recipients'],
          properties: { message: groupMessageSchema, recipients: { type: 'integer', description: 'peers gossipsub sent it to directly' } }
        }
      }
    }
  }, async (request, reply) => {
    const { message, recipients, created } = await groups.send(request.params.id, request.body.text, request.headers['idempotency-key'])
    void reply.code(202)
    if (!created) void reply.header('idempotent-replayed', 'true')
    return { message, recipients }
  })

  app.get<{ Params: { id: string }, Querystring: { before?: string, after?: string, limit: number } }>('/v1/groups/:id/messages', {
    schema: {
      operationId: 'listGroupMessages', errors: [404],
      summary: 'Messages of a group (ours too) in the order this node took them in, oldest first; page with before/after (message ids) like a conversation',
      tags: ['groups'],
      params: groupParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          before: messageCursor,
          after: messageCursor,
          limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE }
        }
      },
      response: { 200: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', items: groupMessageSchema } } } }
    }
  }, async request => ({
    messages: await groups.messages(request.params.id, {
      limit: request.query.limit,
      ...(request.query.before != null ? { before: request.query.before } : {}),
      ...(request.query.after != null ? { after: request.query.after } : {})
    })
  }))
}
