/**
 * Every failure octet reports on purpose is an OctetError with a stable code.
 * Tests and the HTTP layer branch on `code`, never on message text; the message
 * is written for a person and says what to do next.
 */
export type ErrorCode =
  // configuration and start-up
  | 'INVALID_CONFIG'
  | 'INVALID_MULTIADDR'
  | 'INVALID_ADDRESS'
  | 'DATA_DIR_UNWRITABLE'
  | 'DAEMON_ALREADY_RUNNING'
  | 'ADDRESS_IN_USE'
  | 'STORE_VERSION_MISMATCH'
  // the data directory's disk is full: writes wait for space, reads go on
  | 'DISK_FULL'
  /** the state is damaged or gone (octet doctor reports, octet doctor --repair recovers) */
  | 'STATE_DAMAGED'
  /** identity.key and the state belong to different nodes, or one of them is missing */
  | 'STATE_MISMATCH'
  | 'NODE_VERSION_UNSUPPORTED'
  // talking to a daemon
  | 'DAEMON_NOT_RUNNING'
  | 'API_ERROR'
  // HTTP API
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'PEER_NOT_FOUND'
  | 'PEER_UNREACHABLE'
  | 'INVALID_PEER_ID'
  | 'HOST_NOT_ALLOWED'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'EVENTS_PRUNED'
  // wire and crypto (input from peers)
  | 'FRAME_TOO_LARGE'
  | 'MALFORMED_FRAME'
  | 'BAD_BUNDLE'
  | 'BAD_SIGNATURE'
  | 'IDENTITY_CHANGED'
  | 'DECRYPT_FAILED'
  | 'NO_SESSION'
  | 'FORGED_SENDER'
  | 'REPLAYED_MESSAGE'
  // groups (input from peers)
  | 'GROUP_INVALID'
  | 'GROUP_FORGED'
  | 'GROUP_STALE'
  | 'GROUP_GAP'
  /** not (or no longer) a member of the group: from a peer, or as an answer to the API (403) */
  | 'NOT_A_MEMBER'
  /** the group operation needs an admin of the group (403) */
  | 'NOT_AN_ADMIN'
  // testnet
  | 'TESTNET_NODE_FAILED'
  | 'TESTNET_NOT_READY'
  // network namespaces (the NAT testnet)
  | 'NETNS_UNSUPPORTED'
  | 'NETNS_FAILED'
  | 'INTERNAL'

export class OctetError extends Error {
  override readonly name = 'OctetError'
  readonly code: ErrorCode

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

export function isOctetError (err: unknown, code?: ErrorCode): err is OctetError {
  return err instanceof OctetError && (code == null || err.code === code)
}

/** The message of anything thrown, for one-line reports. */
export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** The `code` a Node.js system error carries (ENOENT, EACCES, EADDRINUSE …), if any. */
export function systemErrorCode (err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    return err.code
  }
  return undefined
}
