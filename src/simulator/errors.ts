/**
 * WeChat's error codes as the simulator answers them. The messages follow
 * WeChat's wording; the HTTP face appends the " rid: …" (or ", rid: …", or
 * " hint: […] rid: …") suffix real WeChat puts on every error (see errmsgSuffix).
 */
export const ERRMSG: Readonly<Record<number, string>> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40013: 'invalid appid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40097: 'invalid args',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40164: 'invalid ip, not in whitelist',
  40226: 'high risk user',
  41001: 'access_token missing',
  41002: 'appid missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  42001: 'access_token expired',
  43002: 'require POST method',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit  mustslower  retry next minute',
  47001: 'data format error',
  50004: 'user limited',
  50007: 'account freezed',
  89503: 'need admin confirm',
  // The charge (usage) APIs: WeChat's tables give these only in Chinese (参数错误, spuId非法,
  // 该商品没有最近使用数据); the English wording here is the simulator's.
  10120002: 'invalid param',
  10120700: 'invalid spuId',
  10122000: 'no recent usage data',
};

export interface WeChatError {
  errcode: number;
  errmsg: string;
}

export function wechatError(errcode: number): WeChatError {
  return { errcode, errmsg: ERRMSG[errcode] ?? 'simulated error' };
}

/** Bad input to the simulator's own API (control endpoints, state methods): HTTP 400. */
export class SimInputError extends Error {
  override readonly name = 'SimInputError';
}

/** How an endpoint ends its errmsgs: cgi-bin and wxa paths with " rid: …", sns paths with ", rid: …". */
export type ErrmsgStyle = 'rid' | 'hint' | 'sns';

/** The suffix WeChat appends to an errmsg; its values differ on every answer, so nothing may match on them. */
export function errmsgSuffix(style: ErrmsgStyle, rid: string, hint: string): string {
  switch (style) {
    case 'hint':
      return ` hint: [${hint}] rid: ${rid}`;
    case 'sns':
      return `, rid: ${rid}`;
    default:
      return ` rid: ${rid}`;
  }
}
