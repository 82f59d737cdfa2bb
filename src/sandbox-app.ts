/**
 * The sandbox's one app, registered by sandbox mode and by the simulator alike. Its secret is
 * public on purpose: it only ever protects simulated data, and outside sandbox mode it is refused.
 */
export const SANDBOX_APP: {
  readonly appid: 'wxa1b2c3d4e5f60001';
  readonly secret: string;
  readonly product: 'quick';
  readonly subjectType: 'enterprise';
} = Object.freeze({
  appid: 'wxa1b2c3d4e5f60001',
  secret: 'sandb0x5ecret0f0wxa1b2c3d4e5f6001',
  product: 'quick',
  subjectType: 'enterprise',
});
