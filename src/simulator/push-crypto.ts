import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * WeChat's side of message-push security: what its servers do before a push leaves them.
 * Written apart from the gateway's reader (src/wechat/message-push.ts) so that the two are
 * checked against each other and against other SDKs' bytes, not built from one shared mistake.
 */

/** sha1 over the parts sorted as strings and joined: `signature` and `msg_signature`. */
export function signPush(...parts: string[]): string {
  return createHash('sha1').update([...parts].sort().join('')).digest('hex');
}

/**
 * The `Encrypt` field: AES-256-CBC (key = the EncodingAESKey decoded with a "=" appended, IV =
 * its first 16 bytes) over 16 random bytes, the message's byte length (big-endian uint32), the
 * message and the appid, padded PKCS#7-style to a multiple of 32 bytes.
 */
export function encryptPush(encodingAesKey: string, appid: string, message: string, random: Buffer = randomBytes(16)): string {
  const key = Buffer.from(`${encodingAesKey}=`, 'base64');
  if (key.length !== 32 || random.length !== 16) throw new RangeError('a 43-character EncodingAESKey and 16 random bytes are needed');
  const body = Buffer.from(message, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([random, length, body, Buffer.from(appid, 'utf8')]);
  const pad = 32 - (plain.length % 32);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64');
}
