import type { FastifyInstance } from 'fastify'
import type { Messenger } from '../../messaging/index.js'
import { MAX_CONTACT_NAME_LENGTH } from '../../messaging/constants.js'
import { peerIdSchema } from '../schemas.js'

export const contactSchema = {
  type: 'object',
  required: ['peerId', 'state', 'identity', 'createdAt', 'updatedAt'],
  properties: {
    peerId: { type: 'string' },
    name: { type: 'string' },
    state: { type: 'string', enum: ['accepted', 'pending', 'blocked'], description: 'pending: wrote first, waits for accept or block' },
    identity: { type: 'string', enum: ['unknown', 'trusted', 'changed'], description: 'changed: a new identity key waits for accept-identity' },
    createdAt: { type: 'number' },
    updatedAt: { type: 'number' }
  }
} as const
const contactResponse = { type: 'object', required: ['contact'], properties: { contact: contactSchema } } as const
const peerParams = { type: 'object', required: ['peerId'], properties: { peerId: peerIdSchema } } as const

export async function contactRoutes (app: FastifyInstance, { messenger }: { messenger: Messenger }): Promise<void> {
  app.get('/v1/contacts', {
    schema: {
      operationId: 'listContacts',
      summary: 'Contacts, including pending contact requests and blocked peers',
      tags: ['contacts'],
      response: { 200: { type: 'object', required: ['contacts'], properties: { contacts: { type: 'array', items: contactSchema } } } }
    }
  }, async () => ({ contacts: await messenger.contacts() }))

  app.post<{ Body: { peerId: string, name?: string } }>('/v1/contacts', {
    schema: {
      operationId: 'addContact', errors: [507],
      summary: 'Add a contact (201, Location: /v1/contacts/{peerId}), or rename one (200)',
      tags: ['contacts'],
      body: {
        type: 'object',
        required: ['peerId'],
        additionalProperties: false,
        properties: { peerId: peerIdSchema, name: { type: 'string', minLength: 1, maxLength: MAX_CONTACT_NAME_LENGTH } }
      },
      response: { 200: contactResponse, 201: contactResponse }
    }
  }, async (request, reply) => {
    const { contact, created } = await messenger.addContact(request.body.peerId, request.body.name)
    if (created) void reply.code(201).header('location', `/v1/contacts/${contact.peerId}`)
    return { contact }
  })

  app.get<{ Params: { peerId: string } }>('/v1/contacts/:peerId', {
    schema: { operationId: 'getContact', errors: [404], summary: 'One contact', tags: ['contacts'], params: peerParams, response: { 200: contactResponse } }
  }, async request => ({ contact: await messenger.contact(request.params.peerId) }))

  app.post<{ Params: { peerId: string } }>('/v1/contacts/:peerId/accept', {
    schema: { operationId: 'acceptContact', errors: [507], summary: 'Accept a contact request (or unblock)', tags: ['contacts'], params: peerParams, response: { 200: contactResponse } }
  }, async request => ({ contact: await messenger.setContactState(request.params.peerId, 'accepted') }))

  app.post<{ Params: { peerId: string } }>('/v1/contacts/:peerId/block', {
    schema: { operationId: 'blockContact', errors: [507], summary: "Block a peer: its messages are refused", tags: ['contacts'], params: peerParams, response: { 200: contactResponse } }
  }, async request => ({ contact: await messenger.setContactState(request.params.peerId, 'blocked') }))

  app.get<{ Params: { peerId: string } }>('/v1/contacts/:peerId/safety-number', {
    schema: {
      operationId: 'getSafetyNumber', errors: [404],
      summary: 'The safety number to compare out of band (and the pending one after an identity change)',
      tags: ['contacts'],
      params: peerParams,
      response: {
        200: {
          type: 'object',
          required: ['peerId', 'safetyNumber', 'identity'],
          properties: { peerId: { type: 'string' }, safetyNumber: { type: 'string' }, identity: contactSchema.properties.identity, pendingSafetyNumber: { type: 'string', description: 'the safety number of the new identity key (identity changed)' } }
        }
      }
    }
  }, async request => await messenger.safetyNumber(request.params.peerId))

  app.post<{ Params: { peerId: string } }>('/v1/contacts/:peerId/accept-identity', {
    schema: {
      operationId: 'acceptIdentity', errors: [409, 507],
      summary: "Trust a contact's new identity key; held messages are then decrypted and sent",
      tags: ['contacts'],
      params: peerParams,
      response: { 200: contactResponse }
    }
  }, async request => ({ contact: await messenger.acceptIdentity(request.params.peerId) }))

  app.post<{ Params: { peerId: string } }>('/v1/contacts/:peerId/reset-session', {
    schema: {
      operationId: 'resetSession', errors: [507],
      summary: 'Start the Signal session with a peer over and send again the messages it refused because it could not decrypt them (failed with DECRYPT_FAILED, NO_SESSION or REPLAYED)',
      tags: ['contacts'],
      params: peerParams,
      response: {
        200: {
          type: 'object',
          required: ['peerId', 'requeued'],
          properties: { peerId: { type: 'string' }, requeued: { type: 'integer', description: 'failed messages queued again, in order' } }
        }
      }
    }
  }, async request => await messenger.resetSession(request.params.peerId))
}
