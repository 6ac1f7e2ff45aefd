const IMDS_DEFAULT_ENDPOINT = 'http://169.254.169.254';
const IMDS_TIMEOUT_MS = 1000;
const TOKEN_TTL_SECONDS = '60';

/**
 * The region of the instance the daemon runs on, from instance metadata
 * (IMDSv2: a session token first). The AWS SDK for JavaScript does not look
 * there for a region, unlike the Go SDK behind Prometheus's EC2 discovery, so
 * an entry without `region` would fail on EC2 where an operator expects it to
 * work. Undefined when metadata is disabled (AWS_EC2_METADATA_DISABLED=true) or
 * does not answer.
 */
export async function instanceRegion(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env['AWS_EC2_METADATA_DISABLED']?.toLowerCase() === 'true') return undefined;
  const base = (env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] ?? IMDS_DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const signal = AbortSignal.timeout(IMDS_TIMEOUT_MS);
  try {
    const token = await fetch(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': TOKEN_TTL_SECONDS },
      signal,
    });
    if (!token.ok) return undefined;
    const region = await fetch(`${base}/latest/meta-data/placement/region`, {
      headers: { 'x-aws-ec2-metadata-token': (await token.text()).trim() },
      signal,
    });
    if (!region.ok) return undefined;
    const text = (await region.text()).trim();
    return /^[a-z]{2}(?:-[a-z]+)+-\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}
