import type { OctetEventType } from '../messaging/index.js'
import type { CommitPipeline } from '../store/commit.js'
import type { RecordSublevel } from '../store/database.js'

export type WebhookState = 'active' | 'paused'

/** Events pruned from the log before a webhook got them: ids `from` to `to`, noticed at `at`. */
export interface MissedEvents {
  from: number
  to: number
  at: number
}

/** A webhook as stored. */
export interface WebhookRecord {
  id: string
  url: string
  /** the event types delivered; empty: all */
  events: OctetEventType[]
  /** the HMAC key of its signatures; shown once, at creation */
  secret: string
  createdAt: number
  /** the last event id the receiver acknowledged (2xx) or the filter passed over */
  cursor: number
  state: WebhookState
  /** failed attempts in a row (reset by a 2xx or a resume) */
  failures: number
  /** since when it fails, when it does */
  failingSince?: number
  lastError?: string
  lastErrorAt?: number
  pausedAt?: number
  /** the last gap of pruned events it never got, if any */
  missed?: MissedEvents
}

/**
 * The webhooks and their cursors, in the `webhooks` sublevel. Writes go
 * through the commit pipeline (after every commit made before, so a cursor
 * never lands before the events it points past) and are durable when the
 * returned promise resolves.
 */
export class WebhookStore {
  private readonly records: RecordSublevel<WebhookRecord>

  constructor (private readonly pipeline: CommitPipeline) {
    this.records = pipeline.store.records<WebhookRecord>('webhooks')
  }

  async all (): Promise<WebhookRecord[]> {
    const all: WebhookRecord[] = []
    for await (const record of this.records.values()) all.push(record)
    return all
  }

  async put (record: WebhookRecord): Promise<void> {
    await this.pipeline.commit([{ type: 'put', sublevel: this.records, key: record.id, value: record }])
  }

  async delete (id: string): Promise<void> {
    await this.pipeline.commit([{ type: 'del', sublevel: this.records, key: id }])
  }
}
