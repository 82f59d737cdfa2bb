import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';

/**
 * WeChat's message-push protocol, the receiving side: the URL check, the
 * signatures, the three modes (plaintext, compatible, safe) and both body formats. Pure: no
 * I/O, no clock of its own; what to do with a message is the caller's business.
 *
 * Signatures are SHA-1 over the sorted, concatenated strings: `signature` over Token, timestamp
 * and nonce; `msg_signature` over those and the `Encrypt` field. Safe mode's ciphertext is
 * AES-256-CBC with the key base64(EncodingAESKey + "="), the IV its first 16 bytes and PKCS#7
 * padding to 32-byte blocks; the plaintext is 16 random bytes, the message's length (4 bytes,
 * big-endian), the message, then the appid it was sent for.
 */

export type PushFormat = 'json' | 'xml';
export type PushMode = 'plaintext' | 'compatible' | 'safe';

/** One app's message-push settings, as the WeChat console holds them. */
export interface MessagePushSettings {
  token: string;
  /** The 32-byte AES key from the EncodingAESKey; absent: only plaintext pushes are accepted. */
  aesKey: Buffer | undefined;
  /** What the console's 数据格式 says; bodies of the other format are read too. */
  format: PushFormat;
}

/** A body's fields: XML elements or JSON members. Values keep the type they came with. */
export type PushValue = string | number | boolean | null | PushFields | PushValue[];
export interface PushFields {
  [name: string]: PushValue;
}

export type PushRejection =
  | 'missing_signature'
  | 'bad_signature'
  | 'stale_timestamp'
  | 'bad_body'
  | 'not_encrypted'
  | 'undecryptable'
  | 'wrong_appid';

/** Why a push was refused; `status` is the HTTP status to answer (nothing was recorded). */
export class MessagePushError extends Error {
  override name = 'MessagePushError';
  readonly status: number;
  constructor(
    readonly reason: PushRejection,
    message: string,
  ) {
    super(message);
    this.status = reason === 'missing_signature' || reason === 'bad_signature' || reason === 'stale_timestamp' ? 401 : 400;
  }
}

/**
 * How far `timestamp` may be from this server's clock. Retries reuse the first attempt's
 * signature within seconds; the window bounds how long a captured plaintext-mode signature
 * (which covers no body) could be replayed with another body.
 */
export const MAX_PUSH_CLOCK_SKEW_SECONDS = 300;

const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/;

/** The 32-byte key an EncodingAESKey (43 characters) stands for; throws if it is not one. */
export function aesKeyFromEncodingAesKey(encodingAesKey: string): Buffer {
  if (!ENCODING_AES_KEY.test(encodingAesKey)) throw new Error('an EncodingAESKey is 43 letters and digits');
  const key = Buffer.from(`${encodingAesKey}=`, 'base64');
  if (key.length !== 32) throw new Error('an EncodingAESKey is 43 letters and digits');
  return key;
}

/** SHA-1 (hex) of the strings sorted and joined: both of WeChat's push signatures. */
export function pushSignature(...parts: string[]): string {
  return createHash('sha1').update([...parts].sort().join('')).digest('hex');
}

function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given.toLowerCase(), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** timestamp and nonce as signed; the timestamp within the window around `nowSeconds`. */
function signedParams(query: URLSearchParams, nowSeconds: number): { timestamp: string; nonce: string } {
  const timestamp = query.get('timestamp');
  const nonce = query.get('nonce');
  if (timestamp === null || nonce === null || timestamp === '' || nonce === '') {
    throw new MessagePushError('missing_signature', 'timestamp and nonce are required');
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw new MessagePushError('bad_signature', 'timestamp must be whole seconds');
  if (nonce.length > 64) throw new MessagePushError('bad_signature', 'nonce too long');
  if (Math.abs(Number(timestamp) - nowSeconds) > MAX_PUSH_CLOCK_SKEW_SECONDS) {
    throw new MessagePushError('stale_timestamp', `timestamp more than ${MAX_PUSH_CLOCK_SKEW_SECONDS} s from this server's clock`);
  }
  return { timestamp, nonce };
}

function checkSignature(token: string, query: URLSearchParams, timestamp: string, nonce: string, required: boolean): void {
  const signature = query.get('signature');
  if (signature === null || signature === '') {
    if (required) throw new MessagePushError('missing_signature', 'signature is required');
    return;
  }
  if (!sameSignature(pushSignature(token, timestamp, nonce), signature)) throw new MessagePushError('bad_signature', 'signature does not match');
}

/**
 * The URL check WeChat makes when the console's settings are saved: a GET whose `signature`
 * covers Token, timestamp and nonce. Returns the `echostr` to answer with, as given.
 */
export function verifyPushUrl(settings: MessagePushSettings, query: URLSearchParams, nowSeconds: number): string {
  const { timestamp, nonce } = signedParams(query, nowSeconds);
  checkSignature(settings.token, query, timestamp, nonce, true);
  const echostr = query.get('echostr');
  if (echostr === null || echostr === '') throw new MessagePushError('bad_body', 'echostr is required');
  return echostr;
}

export interface OpenedPush {
  /** The message's fields: decrypted in compatible and safe mode. */
  fields: PushFields;
  mode: PushMode;
  /** The message as WeChat sent it (decrypted where it was encrypted): what identical retries share. */
  raw: string;
}

/**
 * Checks a pushed POST and returns its message. With an AES key configured the message must
 * come encrypted (safe or compatible mode) and only the decrypted copy is read; a plaintext
 * body is then refused (`not_encrypted`) rather than trusted on a signature that covers no body.
 */
export function openPush(settings: MessagePushSettings, appid: string, query: URLSearchParams, body: string, nowSeconds: number): OpenedPush {
  const { timestamp, nonce } = signedParams(query, nowSeconds);
  const outer = parseBody(body, settings.format);
  const encrypt = outer.Encrypt;
  if (encrypt === undefined) {
    if (settings.aesKey) {
      throw new MessagePushError('not_encrypted', 'an EncodingAESKey is configured but the message is not encrypted: set 消息加密方式 to 安全模式 (or remove encodingAesKey)');
    }
    checkSignature(settings.token, query, timestamp, nonce, true);
    return { fields: outer, mode: 'plaintext', raw: body };
  }
  if (typeof encrypt !== 'string' || encrypt === '') throw new MessagePushError('bad_body', 'Encrypt must be a string');
  const plaintextBeside = Object.keys(outer).some((k) => k !== 'Encrypt' && k !== 'ToUserName');
  if (!settings.aesKey) {
    // Compatible mode carries the plaintext too; with no key configured that copy is what we have.
    if (!plaintextBeside) throw new MessagePushError('undecryptable', 'the message is encrypted but no encodingAesKey is configured');
    checkSignature(settings.token, query, timestamp, nonce, true);
    const { Encrypt: _dropped, ...fields } = outer;
    return { fields, mode: 'compatible', raw: body };
  }
  const msgSignature = query.get('msg_signature');
  if (msgSignature === null || msgSignature === '') throw new MessagePushError('missing_signature', 'msg_signature is required for an encrypted message');
  if (!sameSignature(pushSignature(settings.token, timestamp, nonce, encrypt), msgSignature)) {
    throw new MessagePushError('bad_signature', 'msg_signature does not match');
  }
  checkSignature(settings.token, query, timestamp, nonce, false);
  const inner = decryptPushMessage(settings.aesKey, encrypt, appid);
  return { fields: parseBody(inner, settings.format), mode: plaintextBeside ? 'compatible' : 'safe', raw: inner };
}

/**
 * Decrypts an `Encrypt` field and checks that it was sent for `appid`. Every failure is the
 * same `undecryptable` (or `wrong_appid`) error: nothing about the key leaks through the message.
 */
export function decryptPushMessage(aesKey: Buffer, encrypt: string, appid: string): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encrypt) || encrypt.length % 4 !== 0) throw new MessagePushError('undecryptable', 'Encrypt is not base64');
  const ciphertext = Buffer.from(encrypt, 'base64');
  if (ciphertext.length < 32 || ciphertext.length % 16 !== 0) throw new MessagePushError('undecryptable', 'Encrypt has the wrong length');
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', aesKey, aesKey.subarray(0, 16));
    // WeChat pads to 32-byte blocks, which Node's PKCS#7 check (16-byte blocks) refuses.
    decipher.setAutoPadding(false);
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new MessagePushError('undecryptable', 'Encrypt could not be decrypted');
  }
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > 32 || pad > plain.length || !plain.subarray(plain.length - pad).every((b) => b === pad)) {
    throw new MessagePushError('undecryptable', 'Encrypt could not be decrypted (wrong key?)');
  }
  const content = plain.subarray(0, plain.length - pad);
  if (content.length < 20) throw new MessagePushError('undecryptable', 'Encrypt could not be decrypted (too short)');
  const length = content.readUInt32BE(16);
  if (20 + length > content.length) throw new MessagePushError('undecryptable', 'Encrypt could not be decrypted (wrong key?)');
  const sentFor = content.subarray(20 + length).toString('utf8');
  if (sentFor !== appid) throw new MessagePushError('wrong_appid', 'the message was encrypted for another app');
  return content.subarray(20, 20 + length).toString('utf8');
}

/** Reads a body in either format (the configured one first): WeChat's JSON or its flat XML. */
export function parseBody(body: string, format: PushFormat): PushFields {
  const text = body.replace(/^\uFEFF/, '').trim();
  const looksXml = text.startsWith('<');
  const looksJson = text.startsWith('{');
  if (!looksXml && !looksJson) throw new MessagePushError('bad_body', `the body is neither ${format === 'json' ? 'JSON nor XML' : 'XML nor JSON'}`);
  return looksXml ? parsePushXml(text) : parsePushJson(text);
}

export function parsePushJson(text: string): PushFields {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MessagePushError('bad_body', 'the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MessagePushError('bad_body', 'the body must be a JSON object');
  return value as PushFields;
}

const MAX_XML_DEPTH = 16;
const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;

/**
 * WeChat's XML: `<xml>` holding elements whose text is CDATA or plain (numbers), occasionally
 * nested (some events carry lists). No DTD, no entities beyond the five predefined and numeric
 * ones, no attributes that matter, no mixed content: anything else is a bad body, never
 * expanded. Repeated elements become arrays.
 */
export function parsePushXml(text: string): PushFields {
  let i = 0;
  const fail = (what: string): never => {
    throw new MessagePushError('bad_body', `the body is not WeChat's XML: ${what}`);
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i + 4);
        if (end === -1) fail('an unclosed comment');
        i = end + 3;
      } else return;
    }
  };

  // Prolog: an XML declaration at most; a DOCTYPE (and with it entity definitions) is refused.
  skipSpace();
  if (text.startsWith('<?xml', i)) {
    const end = text.indexOf('?>', i);
    if (end === -1) fail('an unclosed declaration');
    i = end + 2;
  }
  skipMisc();
  if (text.startsWith('<!', i)) fail('a DOCTYPE');

  const openTag = (): { name: string; selfClosing: boolean } => {
    if (text[i] !== '<') fail('an element expected');
    i++;
    const m = NAME.exec(text.slice(i, i + 200));
    if (!m) fail('an element name expected');
    const name = m![0];
    i += name.length;
    const close = text.indexOf('>', i);
    if (close === -1) fail(`an unclosed <${name}>`);
    const rest = text.slice(i, close);
    if (rest.includes('<')) fail(`a malformed <${name}>`);
    i = close + 1;
    return { name, selfClosing: rest.trimEnd().endsWith('/') };
  };

  const closeTag = (name: string) => {
    const expected = `</${name}`;
    if (!text.startsWith(expected, i)) fail(`</${name}> expected`);
    i += expected.length;
    skipSpace();
    if (text[i] !== '>') fail(`</${name}> expected`);
    i++;
  };

  const element = (name: string, depth: number): PushValue => {
    if (depth > MAX_XML_DEPTH) fail('nested too deeply');
    const start = i;
    skipMisc();
    // Children (after optional whitespace), or text and CDATA up to the closing tag.
    if (text[i] === '<' && !text.startsWith('<![CDATA[', i) && !text.startsWith('</', i)) {
      const fields: PushFields = {};
      while (!text.startsWith('</', i)) {
        if (i >= text.length) fail(`an unclosed <${name}>`);
        const child = openTag();
        const value = child.selfClosing ? '' : element(child.name, depth + 1);
        add(fields, child.name, value);
        skipMisc();
      }
      closeTag(name);
      return fields;
    }
    i = start;
    let out = '';
    for (;;) {
      if (i >= text.length) fail(`an unclosed <${name}>`);
      if (text.startsWith('<![CDATA[', i)) {
        const end = text.indexOf(']]>', i + 9);
        if (end === -1) fail('an unclosed CDATA section');
        out += text.slice(i + 9, end);
        i = end + 3;
      } else if (text.startsWith('</', i)) {
        closeTag(name);
        return out;
      } else if (text.startsWith('<!--', i)) {
        skipMisc();
      } else if (text[i] === '<') {
        fail(`mixed content in <${name}>`);
      } else {
        const next = text.indexOf('<', i);
        if (next === -1) fail(`an unclosed <${name}>`);
        out += decodeEntities(text.slice(i, next).trim());
        i = next;
      }
    }
  };

  const root = openTag();
  if (root.name !== 'xml') fail('the root element must be <xml>');
  const value = root.selfClosing ? {} : element('xml', 1);
  skipMisc();
  if (i !== text.length) fail('content after </xml>');
  if (typeof value === 'string') {
    if (value.trim() !== '') fail('text directly in <xml>');
    return {};
  }
  return value as PushFields;
}

function add(fields: PushFields, name: string, value: PushValue): void {
  if (!Object.hasOwn(fields, name)) {
    fields[name] = value;
    return;
  }
  const existing = fields[name]!;
  if (Array.isArray(existing)) existing.push(value);
  else fields[name] = [existing, value];
}

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-z]{2,4});/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return safeCodePoint(parseInt(ref.slice(2), 16)) ?? whole;
    if (ref.startsWith('#')) return safeCodePoint(Number(ref.slice(1))) ?? whole;
    return ENTITIES[ref] ?? whole;
  });
}

function safeCodePoint(n: number): string | undefined {
  return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : undefined;
}

/** A field read as text: strings as they are, numbers in decimal; anything else absent. */
export function textField(fields: PushFields, name: string): string | undefined {
  const v = fields[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}
