// webhooks/: pushing the event log to URLs. service.ts (the registry, the entry) runs one
// delivery.ts worker per webhook over store.ts (webhooks and cursors on level); signing.ts
// signs deliveries and holds the receiver's check.
export { WebhookService } from './service.js'
export type { WebhookView, NewWebhook, WebhookServiceInit } from './service.js'
export type { WebhookOptions } from './delivery.js'
export type { WebhookState, MissedEvents } from './store.js'
export { signature, verifyDelivery } from './signing.js'
export type { VerifyResult, VerifyFailure, VerifyInput } from './signing.js'
