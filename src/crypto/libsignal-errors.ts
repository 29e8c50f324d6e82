/**
 * How libsignal's errors become OctetErrors. Every error leaving crypto/ is an
 * OctetError with libsignal's kept as the cause; sessions.ts and sender-keys.ts
 * both translate through here, so one libsignal failure has one code everywhere.
 */
import { ErrorCode as LibsignalErrorCode, LibSignalErrorBase } from '@signalapp/libsignal-client'
import { OctetError } from '../errors.js'
import type { ErrorCode } from '../errors.js'

export function isUntrustedIdentity (err: unknown): boolean {
  return err instanceof LibSignalErrorBase && err.is(LibsignalErrorCode.UntrustedIdentity)
}

export function translate (err: unknown, fallback: ErrorCode, message: string): OctetError {
  if (err instanceof OctetError) return err
  if (err instanceof LibSignalErrorBase) {
    if (err.is(LibsignalErrorCode.DuplicatedMessage)) {
      return new OctetError('REPLAYED_MESSAGE', `${message}: it was already received`, { cause: err })
    }
    if (err.is(LibsignalErrorCode.UntrustedIdentity)) {
      return new OctetError('IDENTITY_CHANGED', `${message}: its identity key changed; compare safety numbers, then accept the change`, { cause: err })
    }
    if (err.is(LibsignalErrorCode.InvalidSenderKeySession)) {
      return new OctetError('NO_SESSION', `${message}: no sender key for it`, { cause: err })
    }
  }
  return new OctetError(fallback, message, { cause: err })
}
