/** The kinds of subject (主体类型) a mini program's account is registered to, as config files name them. */
export type SubjectType = 'enterprise' | 'individual' | 'government' | 'non-profit' | 'public-institution' | 'other';
export const SUBJECT_TYPES: readonly SubjectType[] = [
  'enterprise',
  'individual',
  'government',
  'non-profit',
  'public-institution',
  'other',
];
