import { KiB } from '../units.js'
/**
 * Size limits and versions of octet's wire formats, in one place.
 *
 * Every decoder in src/wire/codec.ts checks the byte length of its input
 * against one of these BEFORE decoding, so a peer cannot make us allocate or
 * parse more than this. Stream readers should pass the same numbers as their
 * `maxDataLength`.
 */

/** The Envelope.version this build writes. */
export const WIRE_VERSION = 1
/** Envelope versions this build can read. */
export const SUPPORTED_WIRE_VERSIONS: readonly number[] = [WIRE_VERSION]

/** Message ids are 16 random bytes (128 bits). */
export const MESSAGE_ID_BYTES = 16

/** One encoded DmFrame on /octet/dm/1.0.0, without its length prefix. */
export const MAX_FRAME_BYTES = 64 * KiB
/** One encoded Envelope (standalone, e.g. held by a mailbox peer). Always fits in a frame. */
export const MAX_ENVELOPE_BYTES = 63 * KiB
/** Envelope.ciphertext: a padded plaintext plus libsignal's overhead (PQXDH prekey messages carry a Kyber ciphertext, ~1.6 KiB). */
export const MAX_CIPHERTEXT_BYTES = 48 * KiB
/** An encoded Plaintext or Receipt, i.e. what is Signal-encrypted into one envelope. */
export const MAX_PLAINTEXT_BYTES = 32 * KiB
/**
 * An encoded Batch: what one BATCH envelope seals. With libsignal's overhead
 * (a PreKey message adds ~1.7 KiB, CBC padding 16 bytes) it stays under MAX_CIPHERTEXT_BYTES.
 */
export const MAX_BATCH_PLAINTEXT_BYTES = 40 * KiB
/** Items in one Batch (and so the item count a BATCH envelope may announce). */
export const MAX_BATCH_ITEMS = 256
/** Plaintext.text, in UTF-8 bytes (not characters). */
export const MAX_TEXT_BYTES = 16 * KiB
/** Plaintext.padding. */
export const MAX_PADDING_BYTES = 4 * KiB
/** By default an encoded Plaintext is padded to a multiple of this many bytes, so ciphertext sizes leak only a coarse text length. */
export const PLAINTEXT_PAD_BLOCK_BYTES = 160
/** Receipt.ids: message ids acknowledged by one receipt. Senders split longer lists. */
export const MAX_RECEIPT_IDS = 512
/** Ack.reason, in UTF-8 bytes. */
export const MAX_ACK_REASON_BYTES = 256
/**
 * One sealed envelope (an encoded SealedEnvelope, see src/crypto/seal.ts): an
 * Envelope of at most MAX_ENVELOPE_BYTES plus the ephemeral key and the
 * GCM-SIV tag. What a mailbox stores and seal.ts opens.
 */
export const MAX_SEALED_BYTES = 70 * KiB
/** A PeerId string (an Ed25519 PeerId in base58btc is 52 characters; CIDv1 forms are longer). */
export const MAX_PEER_ID_CHARS = 128
