import { DISTRIBUTOR_DOCUMENT } from "../../functions/core/contract.js";
import { AwsServiceError } from "../world/service-error.js";
import { DEFAULT_PACKAGE_VERSIONS } from "../world/ssm/distributor.js";
import type { World } from "../world/world.js";

/** Another team's Distributor package, published beside the CodeDeploy agent's. */
export const OTHER_TEAM_PACKAGE = "AmazonCloudWatchAgent";

/** The account's Distributor packages: the agent's, and the other team's. */
export function accountPackageVersions(extra: Record<string, string[]> = {}): Record<string, string[]> {
  return { ...DEFAULT_PACKAGE_VERSIONS, [OTHER_TEAM_PACKAGE]: ["1.300032.2", "1.300049.1"], ...extra };
}

export interface OtherTeam {
  /** Commands the team sent, by instance. */
  readonly commands: Map<string, string>;
  stop(): void;
}

/**
 * Another team's automation in the same account: as soon as a new instance of `groups` registers
 * with SSM, it installs its own package there with AWS-ConfigureAWSPackage (the CloudWatch agent,
 * as a State Manager association or a Lambda of theirs would), racing the service's install. The
 * service must neither follow these commands nor count them as its installs.
 */
export function otherTeamInstalls(world: World, groups: readonly string[]): OtherTeam {
  const commands = new Map<string, string>();
  const stop = world.events.on("instance.registered", ({ instance }) => {
    if (!instance.groupName || !groups.includes(instance.groupName) || commands.has(instance.id)) return;
    const delay = world.rng.fork(`other-team:${instance.id}`).draw({ min: 0, max: 10 });
    world.scheduler.after(delay * 1000, () => {
      try {
        const command = world.ssm.sendCommand({
          DocumentName: DISTRIBUTOR_DOCUMENT,
          InstanceIds: [instance.id],
          Parameters: { action: ["Install"], name: [OTHER_TEAM_PACKAGE], version: [""] },
          Comment: "observability team: CloudWatch agent on new instances",
        });
        commands.set(instance.id, command.commandId);
      } catch (error) {
        // The instance went away (or was stopped) before the team got to it.
        if (!(error instanceof AwsServiceError && error.code === "InvalidInstanceId")) throw error;
      }
    });
  });
  return { commands, stop };
}
