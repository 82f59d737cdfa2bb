import { GatewayError } from '../graphql/client';

/**
 * Downloads the consent export (GET /audit/export.ndjson, the gateway's streaming export) with
 * the bearer token in a header: a plain link could not carry it. The file goes to the download
 * folder the operator chooses; nothing of it stays in the page.
 */
export async function exportNdjson(token: string, filter: { appid: string; subjectHash: string | null; purpose: string | null; from: string | null; to: string | null }): Promise<void> {
  const params = new URLSearchParams({ appid: filter.appid });
  for (const key of ['subjectHash', 'purpose', 'from', 'to'] as const) {
    const v = filter[key];
    if (v) params.set(key, v);
  }
  const res = await fetch(`/audit/export.ndjson?${params}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { errors?: { message: string; extensions?: { code?: string } }[] } | null;
    throw new GatewayError(body?.errors?.[0]?.message ?? `HTTP ${res.status}`, res.status, body?.errors?.[0]?.extensions?.code);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `consent-${filter.appid}.ndjson`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
