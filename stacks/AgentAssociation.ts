import { CfnAssociation } from "aws-cdk-lib/aws-ssm";
import { type StackContext, use } from "sst/constructs";
import { INSTALL_DOCUMENT } from "../functions/core/contract.js";
import { Foundation } from "./Foundation.js";

/**
 * The baseline: a State Manager association that installs the agent with Distributor on the
 * fleet, and upgrades it on a schedule (AWS-ConfigureAWSPackage leaves an agent already at the
 * requested version alone). The version parameter is present only when the stage pins one;
 * without it Distributor installs the latest published version.
 */
export function AgentAssociation({ app, stack }: StackContext) {
  const { config } = use(Foundation);
  const { association, agent } = config;
  if (!association.enabled) return { association: undefined };

  const cfnAssociation = new CfnAssociation(stack, "InstallCodeDeployAgent", {
    associationName: `${app.name}-${app.stage}-install-codedeployagent`,
    name: INSTALL_DOCUMENT,
    parameters: {
      action: ["Install"],
      name: [agent.package],
      ...(agent.version ? { version: [agent.version] } : {}),
    },
    // Target keys: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html
    targets: [{ key: association.target.key, values: association.target.values }],
    scheduleExpression: association.schedule,
    applyOnlyAtCronInterval: association.applyOnlyAtCronInterval,
    complianceSeverity: association.complianceSeverity,
    // Percentages of the targets: at most this share reinstalls its agent at once, and the run
    // stops once this share has failed, so a group is never taken offline as a whole.
    maxConcurrency: association.maxConcurrency,
    maxErrors: association.maxErrors,
  });

  stack.addOutputs({ AssociationName: cfnAssociation.associationName ?? "" });
  return { association: cfnAssociation };
}
