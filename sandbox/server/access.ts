import { ACCOUNT_ID, AwsServiceError } from "../world/service-error.js";
import type { World } from "../world/world.js";
import { asStrings } from "./operation.js";

/**
 * IAM, as far as the sandbox models it: a caller (a function, by name) may be refused an operation
 * on some resources, as its role's policy would. Only what a scenario restricts is enforced, and an
 * unrestricted caller may do anything. A rule returns the ARN of the first resource it refuses.
 */
export type AccessRule = (input: Record<string, unknown>, world: World) => string | undefined;

export class AccessPolicies {
  private readonly rules = new Map<string, AccessRule>();

  /** `operation` as the server names it: `SSM.SendCommand`. */
  restrict(caller: string, operation: string, rule: AccessRule): void {
    this.rules.set(`${caller} ${operation}`, rule);
  }

  /** The error IAM answers, or undefined when the request is allowed. */
  check(
    caller: string,
    operation: string,
    input: Record<string, unknown>,
    world: World,
  ): AwsServiceError | undefined {
    const resource = this.rules.get(`${caller} ${operation}`)?.(input, world);
    if (!resource) return undefined;
    const [service = "", name = ""] = operation.split(".");
    const action = `${service.toLowerCase()}:${name}`;
    return new AwsServiceError(
      "AccessDeniedException",
      `User: arn:aws:sts::${ACCOUNT_ID}:assumed-role/${caller}-role/${caller} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
    );
  }
}

/**
 * The SendCommand statement of stacks/permissions.ts: instances whose `aws:autoscaling:groupName`
 * tag names one of `groups` (the ssm:resourceTag condition); SendCommand is refused as a whole when
 * one instance is outside (https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html).
 */
export function sendCommandInGroups(groups: readonly string[]): AccessRule {
  return (input, world) => {
    const outside = (asStrings(input.InstanceIds) ?? []).find((id) => {
      const group = world.instances.get(id)?.groupName;
      return !group || !groups.includes(group);
    });
    return outside ? `arn:aws:ec2:${world.region}:${ACCOUNT_ID}:instance/${outside}` : undefined;
  };
}
