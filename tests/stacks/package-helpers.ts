import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** cfn-lint's findings on the templates, as the stack tests run it ("" when clean). */
export function cfnLint(files: string[]): string {
  try {
    // W3005 (a DependsOn that a reference already implies) is emitted by CDK itself.
    return execFileSync("cfn-lint", ["--format", "parseable", "--ignore-checks", "W3005", "--", ...files], {
      encoding: "utf8",
    }).trim();
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string };
    if (failure.code === "ENOENT")
      throw new Error("cfn-lint is not on PATH: install it (pip install cfn-lint) to check the templates", {
        cause: error,
      });
    return (failure.stdout ?? String(error)).trim();
  }
}

/** The cdk-nag AwsSolutions errors and warnings a cloud assembly's manifests carry. */
export function nagFindings(assembly: string): string[] {
  const findings: string[] = [];
  for (const file of readdirSync(assembly).filter((name) => name.endsWith("manifest.json"))) {
    const manifest = JSON.parse(readFileSync(join(assembly, file), "utf8")) as {
      artifacts?: Record<string, { metadata?: Record<string, { type: string; data: unknown }[]> }>;
    };
    for (const artifact of Object.values(manifest.artifacts ?? {})) {
      for (const [path, entries] of Object.entries(artifact.metadata ?? {})) {
        for (const entry of entries) {
          const text = String(entry.data ?? "");
          if (
            (entry.type === "aws:cdk:error" || entry.type === "aws:cdk:warning") &&
            text.includes("AwsSolutions-")
          )
            findings.push(`${entry.type} ${path}: ${text}`);
        }
      }
    }
  }
  return findings;
}
