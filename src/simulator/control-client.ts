import type { PackInput, PhoneCodeResult, SimAppInput, SimAppSummary, SimulatorStats } from './state.js';
import type { FaultSpec } from './faults.js';
import type { SimApiSecuritySummary } from './api-security.js';
import type { PushDelivery, PushFormat, PushMode, PushTargetInput } from './message-push.js';

/**
 * A typed client for the simulator's /__sim__ API, for tests and the demo that
 * drive a simulator over HTTP (in another process, or just to use the real wire).
 */
export class SimulatorControl {
  constructor(readonly baseUrl: string) {}

  listApps(): Promise<SimAppSummary[]> {
    return this.call('GET', '/__sim__/apps');
  }

  /** With `apiSecurity`, the answer carries the platform's public key and certificate number. */
  registerApp(app: SimAppInput): Promise<{ appid: string; exempt: boolean; apiSecurity?: SimApiSecuritySummary }> {
    return this.call('POST', '/__sim__/apps', app);
  }

  /** The button's success callback (charges one unit), or 1400001 with no quota left. */
  phoneCode(input: { appid: string; phoneNumber: string; countryCode?: string | number; openid?: string }): Promise<PhoneCodeResult> {
    return this.call('POST', '/__sim__/phone-codes', input);
  }

  /** wx.login: a login code, rotating the user's session key. */
  loginCode(input: {
    appid: string;
    openid: string;
    phoneNumber?: string;
    countryCode?: string;
  }): Promise<{ code: string; encryptedData?: string; iv?: string }> {
    return this.call('POST', '/__sim__/login-codes', input);
  }

  encryptedPhone(input: { appid: string; openid: string; phoneNumber: string; countryCode?: string }): Promise<{ encryptedData: string; iv: string }> {
    return this.call('POST', '/__sim__/encrypted-phone', input);
  }

  addPack(appid: string, pack: PackInput): Promise<{ pkgId: string }> {
    return this.call('POST', '/__sim__/packs', { appid, ...pack });
  }

  fault(path: string, fault: FaultSpec & { times?: number }): Promise<{ path: string; pending: number }> {
    return this.call('POST', '/__sim__/faults', { path, ...fault });
  }

  advance(advanceSeconds: number): Promise<{ now: number }> {
    return this.call('POST', '/__sim__/clock', { advanceSeconds });
  }

  /** The app's message-push URL, Token, EncodingAESKey, mode and format (null: no pushes). */
  setMessagePush(appid: string, target: PushTargetInput | null): Promise<{ appid: string; url: string | null; mode: PushMode | null; format: PushFormat | null }> {
    return this.call('POST', '/__sim__/message-push', target === null ? { appid, url: null } : { appid, ...target });
  }

  /** What was pushed to the app's URL, with each attempt's answer. */
  messagePushes(appid: string): Promise<{ appid: string; url: string | null; mode: PushMode | null; format: PushFormat | null; deliveries: PushDelivery[] }> {
    return this.call('GET', `/__sim__/message-push?appid=${encodeURIComponent(appid)}`);
  }

  stats(): Promise<SimulatorStats> {
    return this.call('GET', '/__sim__/stats');
  }

  reset(): Promise<{ ok: true }> {
    return this.call('POST', '/__sim__/reset', {});
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const value = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new Error(`simulator ${method} ${path}: HTTP ${res.status} ${value.error ?? ''}`.trim());
    return value;
  }
}
