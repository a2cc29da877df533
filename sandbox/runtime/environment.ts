import { SERVICE_NAME } from "../../functions/core/contract.js";

/**
 * The process environment the handlers start with: endpoints pointing at the sandbox (DynamoDB
 * possibly elsewhere, `endpoints.dynamodb`), a Region, fake credentials (the server does not check
 * signatures) and quiet Powertools. The AWS clients read it once, when `functions/core/common/clients.ts`
 * is first imported (the endpoints at their first call), so this runs before any handler import.
 */
export function configureAwsEnvironment(
  endpoint: string,
  region: string,
  quiet = true,
  endpoints: { dynamodb?: string } = {},
): void {
  for (const service of ["SSM", "AUTO_SCALING", "CODEDEPLOY", "SQS"]) {
    process.env[`AWS_ENDPOINT_URL_${service}`] = endpoint;
  }
  process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodb ?? endpoint;
  process.env.AWS_REGION = region;
  process.env.AWS_ACCESS_KEY_ID ??= "sandbox";
  process.env.AWS_SECRET_ACCESS_KEY ??= "sandbox";
  process.env.AWS_SESSION_TOKEN ??= "sandbox";
  if (quiet) process.env.POWERTOOLS_LOG_LEVEL ??= "SILENT";
  process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
  process.env.POWERTOOLS_TRACE_ENABLED ??= "false";
  process.env.POWERTOOLS_SERVICE_NAME ??= SERVICE_NAME;
  process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE ??= "1";
}

export function applyEnvironment(variables: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(variables)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}
