import { expect } from 'vitest';

// WeChat ends every errmsg with a request id ("… rid: 632d16be-15ad5486-1e378de4"), sns paths after
// a comma, the phone path's code errors with a hint first: see test/fixtures/wechat.
const RID = '[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}';
const SUFFIX = { rid: ` rid: ${RID}`, sns: `, rid: ${RID}`, hint: ` hint: \\[[\\w-]+\\] rid: ${RID}` } as const;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** An asymmetric matcher for WeChat's errmsg `message` with its suffix of the given form. */
export function errmsg(message: string, form: keyof typeof SUFFIX = 'rid'): unknown {
  return expect.stringMatching(new RegExp(`^${escape(message)}${SUFFIX[form]}$`));
}
