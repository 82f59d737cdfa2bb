import { useI18n } from '../i18n';
import { useQuery } from '../graphql/use-query';
import { ConsoleAppIdsDocument } from '../graphql/generated';

/** A select of every app the gateway serves (optionally "all apps"), for pages about one app or all. */
export function AppPicker(props: { value: string | null; onChange: (appid: string | null) => void; allowAll?: boolean; id: string }) {
  const { t } = useI18n();
  const apps = useQuery(ConsoleAppIdsDocument, {});
  const list = apps.data?.apps ?? [];
  return (
    <select id={props.id} value={props.value ?? ''} disabled={apps.loading && !list.length} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value || null)}>
      {props.allowAll ? <option value="">{t('picker.allApps')}</option> : !props.value && <option value="">{apps.loading ? t('state.loading') : t('picker.choose')}</option>}
      {list.map((a) => (
        <option key={a.appid} value={a.appid}>
          {a.appid}
        </option>
      ))}
    </select>
  );
}
