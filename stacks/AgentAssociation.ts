import { CfnAssociation } from "aws-cdk-lib/aws-ssm";
import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";

// The baseline: a State Manager association that keeps the agent current on the fleet on a
// schedule, with the stage's own install document, so it too leaves an agent already at the pinned
// version alone and never restarts one in the middle of a deployment. Created only for the instances
// the stage names (its groups, or association.target), never in a dry run.
export function AgentAssociation({ app, stack }: StackContext) {
  const { config, documents } = use(Foundation);
  const { association, agent } = config;
  if (!association.enabled || !association.target) return { association: undefined };

  const cfnAssociation = new CfnAssociation(stack, "InstallCodeDeployAgent", {
    associationName: `${app.name}-${app.stage}-install-codedeployagent`,
    name: documents.install.ref,
    parameters: {
      packageName: [agent.package],
      version: [agent.version],
      // A pinned stage accepts only its pin; a stage on the latest accepts whatever the install puts in place.
      expectedVersion: [agent.version],
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
