import type { AccessTokenProvider } from '../wechat/index.js';
import type { PhoneInfo, WechatClient } from '../wechat/index.js';
import { legacyDecrypt } from './legacy.js';
import type { ExchangeAttempt } from './request.js';

/** The step that reaches WeChat: what the attempt asks, sent with the app's shared access token or its secret. */
export class WechatStep {
  constructor(
    private readonly wechat: WechatClient,
    private readonly tokens: AccessTokenProvider,
  ) {}

  async ask(attempt: ExchangeAttempt): Promise<PhoneInfo> {
    if (attempt.flow === 'legacy') return legacyDecrypt(this.wechat, attempt);
    const { app, session } = attempt;
    // Sent to WeChat only if the adapter is configured to (sendOpenid); the session's subject is the openid.
    const openid = session.appid === app.appid ? session.subject : undefined;
    const code = attempt.code;
    return this.tokens.withToken(app.appid, (token) => this.wechat.getUserPhoneNumber(token, { code, openid, appid: app.appid }), attempt.meta.requestId ?? undefined);
  }
}
