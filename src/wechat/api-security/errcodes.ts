// WeChat's refusals of a request at the API security layer (the guide's error table). Each one
// means WeChat turned the request away before reading it, so the code was not spent, and the
// fix is the gateway's keys, key numbers or clock: a configuration problem, not the user's.

import type { ErrcodeInfo } from '../errors.js';

const refused = (description: string): ErrcodeInfo => ({ kind: 'credentials', retryable: false, description: `API security: ${description}` });

export const API_SECURITY_ERRCODES: Readonly<Record<number, ErrcodeInfo>> = {
  40230: refused('Wechatmp-Serial header missing'),
  40231: refused('Wechatmp-TimeStamp header missing'),
  40232: refused('Wechatmp-Signature header missing'),
  40233: refused('Wechatmp-Appid header missing (the app has API security on: configure apiSecurity for it)'),
  40234: refused('invalid signature (check privateKey and privateKeySn against the public key uploaded in the console)'),
  40235: refused('invalid encryption (check symmetricKey and symmetricKeySn)'),
  40236: refused('invalid Wechatmp-Appid'),
  40237: refused('Wechatmp-Appid does not match the access token\'s app'),
  40238: refused('no symmetric key set in the console'),
  40239: refused('no public key uploaded in the console'),
  40240: refused('request timestamp expired (check this host\'s clock)'),
};
